// `meridian webhook create|list|show|update|delete|ping|list-events|redeliver`, as
// `az acr webhook` has them, through the admin API of a running registry (writes are
// made by the home replica and reach every region).
import type { Command } from "commander";
import { AdminClient } from "./admin-client.ts";

interface Target {
  registry?: string;
  output: string;
}

interface WebhookFlags extends Target {
  name: string;
  uri?: string;
  actions?: string[];
  location?: string;
  scope?: string;
  headers?: string[];
  status?: string;
  secret?: string;
}

interface View {
  name: string;
  uri: string;
  actions: string[];
  location: string | null;
  scope: string | null;
  headers: string[];
  status: string;
  secretSet: boolean;
}

interface EventView {
  id: string;
  eventKey: string;
  action: string;
  repository: string;
  region: string;
  state: string;
  attempts: number;
  createdAt: string;
  log: { at: string; status: number | null; latencyMs: number; response: string }[];
}

export function registerWebhookCommand(program: Command): void {
  const webhook = program
    .command("webhook")
    .description("manage webhooks: HTTP callbacks on pushes and deletes, per region");
  const named = (command: Command) =>
    target(command).requiredOption("-n, --name <name>", "the webhook's name");

  fields(named(webhook.command("create")))
    .description("create a webhook (its secret is never shown again)")
    .action(async (flags: WebhookFlags) => {
      if (!flags.uri) throw new Error("create needs --uri");
      if (!flags.actions?.length) throw new Error("create needs --actions push and/or delete");
      const body: Record<string, unknown> = {
        name: flags.name,
        uri: flags.uri,
        actions: flags.actions,
        headers: parseHeaders(flags.headers ?? []),
      };
      for (const key of ["location", "scope", "status", "secret"] as const) {
        if (flags[key] !== undefined && flags[key] !== "") body[key] = flags[key];
      }
      const client = await AdminClient.resolve(flags.registry);
      show(flags.output, (await client.request("POST", "webhooks", body)) as View);
    });

  fields(named(webhook.command("update")))
    .description("change a webhook; an empty --location, --scope or --secret clears it")
    .action(async (flags: WebhookFlags) => {
      const body: Record<string, unknown> = {};
      if (flags.uri !== undefined) body.uri = flags.uri;
      if (flags.actions !== undefined) body.actions = flags.actions;
      if (flags.headers !== undefined) body.headers = parseHeaders(flags.headers);
      if (flags.status !== undefined) body.status = flags.status;
      for (const key of ["location", "scope", "secret"] as const) {
        if (flags[key] !== undefined) body[key] = flags[key] === "" ? null : flags[key];
      }
      if (Object.keys(body).length === 0) throw new Error("update needs a field to change");
      const client = await AdminClient.resolve(flags.registry);
      show(flags.output, (await client.request("PATCH", path(flags.name), body)) as View);
    });

  target(webhook.command("list"))
    .description("list the webhooks")
    .action(async (flags: Target) => {
      const client = await AdminClient.resolve(flags.registry);
      const rows = (await client.request("GET", "webhooks")) as View[];
      print(flags.output, rows, ["NAME", "STATUS", "LOCATION", "ACTIONS", "SCOPE", "URI"], (w) => [
        w.name,
        w.status,
        w.location ?? "",
        w.actions.join(","),
        w.scope ?? "",
        w.uri,
      ]);
    });

  named(webhook.command("show"))
    .description("show a webhook")
    .action(async (flags: WebhookFlags) => {
      const client = await AdminClient.resolve(flags.registry);
      show(flags.output, (await client.request("GET", path(flags.name))) as View);
    });

  named(webhook.command("delete"))
    .description("delete a webhook")
    .action(async (flags: WebhookFlags) => {
      const client = await AdminClient.resolve(flags.registry);
      await client.request("DELETE", path(flags.name));
      process.stdout.write(`webhook ${flags.name} deleted\n`);
    });

  named(webhook.command("ping"))
    .description("send a ping event now and print the answer")
    .action(async (flags: WebhookFlags) => {
      const client = await AdminClient.resolve(flags.registry);
      const answer = (await client.request("POST", `${path(flags.name)}/ping`)) as {
        id: string;
        status: number | null;
        latencyMs: number;
        response: string;
      };
      if (flags.output === "json") {
        process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
        return;
      }
      process.stdout.write(
        `ping ${answer.id}: ${answer.status ?? "no answer"} in ${answer.latencyMs} ms ${answer.response.slice(0, 200)}\n`,
      );
    });

  named(webhook.command("list-events"))
    .description("the webhook's recent events and every delivery attempt")
    .option("--limit <n>", "how many events (newest first)", "50")
    .action(async (flags: WebhookFlags & { limit: string }) => {
      const client = await AdminClient.resolve(flags.registry);
      const rows = (await client.request(
        "GET",
        `${path(flags.name)}/events?limit=${encodeURIComponent(flags.limit)}`,
      )) as EventView[];
      print(
        flags.output,
        rows,
        ["ID", "REGION", "ACTION", "REPOSITORY", "STATE", "ATTEMPTS", "LAST STATUS", "CREATED"],
        (e) => {
          const last = e.log.at(-1);
          return [
            e.id,
            e.region,
            e.action,
            e.repository,
            e.state,
            String(e.attempts),
            last ? String(last.status ?? last.response.slice(0, 40)) : "",
            e.createdAt,
          ];
        },
      );
    });

  named(webhook.command("redeliver <eventId>"))
    .description("queue an event again (after it was delivered or dead-lettered)")
    .action(async (eventId: string, flags: WebhookFlags) => {
      const client = await AdminClient.resolve(flags.registry);
      await client.request(
        "POST",
        `${path(flags.name)}/events/${encodeURIComponent(eventId)}/redeliver`,
      );
      process.stdout.write(`event ${eventId} queued again\n`);
    });
}

function target(command: Command): Command {
  return command
    .option("--registry <endpoint>", "the registry's admin API (default: meridian login's)")
    .option("-o, --output <format>", "table or json", "table");
}

function fields(command: Command): Command {
  return command
    .option("--uri <url>", "the receiver (http or https)")
    .option("--actions <action...>", "push and/or delete")
    .option("--location <region>", "deliver from this region, once the event is true there")
    .option("--scope <pattern>", "repo:tag with * wildcards ('app:*'); default: everything")
    .option("--headers <key=value...>", "custom headers sent with every event")
    .option("--status <status>", "enabled or disabled")
    .option("--secret <secret>", "signs each body: X-Meridian-Signature: sha256=<HMAC>");
}

function path(name: string): string {
  return `webhooks/${encodeURIComponent(name)}`;
}

function parseHeaders(specs: string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const spec of specs) {
    const at = spec.indexOf("=");
    if (at <= 0) throw new Error(`bad --headers ${spec}: expected key=value`);
    headers[spec.slice(0, at)] = spec.slice(at + 1);
  }
  return headers;
}

function show(format: string, view: View): void {
  if (format === "json") {
    process.stdout.write(`${JSON.stringify(view, null, 2)}\n`);
    return;
  }
  if (format !== "table") throw new Error(`unknown output format ${format}: table or json`);
  const rows: [string, string][] = [
    ["name", view.name],
    ["uri", view.uri],
    ["status", view.status],
    ["actions", view.actions.join(", ")],
    ["location", view.location ?? "(where each event happens)"],
    ["scope", view.scope ?? "(everything)"],
    ["headers", view.headers.join(", ")],
    ["secret", view.secretSet ? "set (never shown)" : "none"],
  ];
  for (const [key, value] of rows) process.stdout.write(`${key.padEnd(9)} ${value}\n`);
}

function print<T>(format: string, rows: T[], header: string[], columns: (row: T) => string[]) {
  if (format === "json") {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  if (format !== "table") throw new Error(`unknown output format ${format}: table or json`);
  const lines = [header, ...rows.map(columns)];
  const widths = header.map((_, i) => Math.max(...lines.map((line) => (line[i] ?? "").length)));
  for (const line of lines) {
    process.stdout.write(
      `${line
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd()}\n`,
    );
  }
}
