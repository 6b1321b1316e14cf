// `meridian import --source <registry>/<repo>:<tag>|@<digest> [--image <repo>[:<tag>]]`: asks
// a replica to copy an image from another registry (the replica does the copy, as
// `az acr import` has the registry do it), then follows the job: a progress bar on a
// terminal, plain lines otherwise. Exits 0 once the image is in, 1 with one line when the
// import fails. Leaving (Ctrl-C, a lost connection) does not stop the job: `meridian
// imports` lists a replica's recent jobs and `meridian imports <id>` follows one again.
import { setTimeout as delay } from "node:timers/promises";
import type { Command } from "commander";
import { stickyParameter } from "../routing/sticky-upload.ts";
import { AdminClient } from "./admin-client.ts";
import { formatBytes } from "./format-bytes.ts";
import { ImportProgressView, type JobView, summary } from "./import-progress.ts";

interface ImportFlags {
  source: string;
  image?: string;
  username?: string;
  passwordStdin?: boolean;
  force?: boolean;
  allPlatforms?: boolean;
  platform?: string;
  withReferrers?: boolean;
  sourceInsecure?: boolean;
  wait: boolean;
  registry?: string;
}

const pollMs = 500;
/** Polls that may fail in a row (a replica restarting) before the command gives up. */
const maxPollFailures = 20;

export function registerImportCommand(program: Command): void {
  program
    .command("import")
    .description("copy an image from another OCI or Docker registry into Meridian (server-side)")
    .requiredOption("--source <reference>", "<registry>/<repo>:<tag> or <registry>/<repo>@<digest>")
    .option("--image <repo[:tag]>", "where it goes here (default: the source's repository and tag)")
    .option("-u, --username <name>", "the source registry's username")
    .option("--password-stdin", "read the source registry's password from standard input")
    .option("--force", "overwrite an existing tag that names another image")
    .option("--all-platforms", "every platform of a multi-platform image (the default)")
    .option("--platform <os/arch[/variant]>", "only this platform; the tag then names its manifest")
    .option("--with-referrers", "also copy the referrers (signatures, SBOMs)")
    .option("--source-insecure", "allow plain HTTP to a source that is not on loopback")
    .option("--no-wait", "print the job id and return; the import goes on in the registry")
    .option(
      "--registry <endpoint>",
      "the Meridian replica that runs the import (default: meridian login's)",
    )
    .action(async (flags: ImportFlags) => {
      await runImport(flags);
    });
  program
    .command("imports [id]")
    .description("list a replica's recent imports, or follow one (by id) until it ends")
    .option("-o, --output <format>", "table or json (the list)", "table")
    .option(
      "--registry <endpoint>",
      "the replica that runs the imports (default: meridian login's)",
    )
    .action(async (id: string | undefined, flags: { output: string; registry?: string }) => {
      const client = await AdminClient.resolve(flags.registry);
      if (id) {
        const job = (await client.request("GET", `imports/${encodeURIComponent(id)}`)) as JobView;
        await followToTheEnd(client, job);
        return;
      }
      listJobs((await client.request("GET", "imports")) as JobView[], flags.output);
    });
}

async function runImport(flags: ImportFlags): Promise<void> {
  if (flags.platform !== undefined && flags.allPlatforms) {
    throw new Error("--platform and --all-platforms exclude each other");
  }
  if (flags.passwordStdin && !flags.username) throw new Error("--password-stdin needs --username");
  if (flags.username && !flags.passwordStdin) {
    throw new Error("--username needs --password-stdin (the password is read from standard input)");
  }
  const password = flags.passwordStdin ? (await readStdin()).replace(/\r?\n$/, "") : undefined;
  const client = await AdminClient.resolve(flags.registry);
  const job = (await client.request("POST", "imports", {
    source: flags.source,
    image: flags.image,
    username: flags.username,
    password,
    force: flags.force ?? false,
    platform: flags.platform,
    withReferrers: flags.withReferrers ?? false,
    sourceInsecure: flags.sourceInsecure ?? false,
  })) as JobView;
  if (!flags.wait) {
    process.stdout.write(`${job.id}\n`);
    return;
  }
  await followToTheEnd(client, job);
}

/** Shows the job's progress until it ends: its summary, or one line and exit 1. */
async function followToTheEnd(client: AdminClient, job: JobView): Promise<void> {
  const leave = () => {
    process.stderr.write(
      `\nmeridian: stopped following; import ${job.id} goes on in ${client.endpoint} (meridian imports ${job.id})\n`,
    );
    process.exit(130);
  };
  process.once("SIGINT", leave);
  const view = new ImportProgressView(process.stderr, process.stderr.isTTY === true);
  const final = await follow(client, job, view);
  process.off("SIGINT", leave);
  if (final.state === "failed")
    throw new Error(`import failed: ${final.reason ?? "no reason given"}`);
  process.stdout.write(`${summary(final)}\n`);
}

async function follow(
  client: AdminClient,
  job: JobView,
  view: ImportProgressView,
): Promise<JobView> {
  let current = job;
  let failures = 0;
  // Through a global endpoint, every poll goes to the replica that runs the job.
  const pin = job.region ? `?${stickyParameter}=${encodeURIComponent(job.region)}` : "";
  view.show(current);
  if (current.state === "succeeded" || current.state === "failed") return current;
  for (;;) {
    await delay(pollMs);
    try {
      current = (await client.request("GET", `imports/${job.id}${pin}`)) as JobView;
      failures = 0;
    } catch (error) {
      failures += 1;
      if (failures >= maxPollFailures) {
        throw new Error(
          `lost ${client.endpoint} (${error instanceof Error ? error.message : String(error)}); import ${job.id} may still be running there`,
        );
      }
      continue;
    }
    view.show(current);
    if (current.state === "succeeded" || current.state === "failed") return current;
  }
}

function listJobs(jobs: JobView[], format: string): void {
  if (format === "json") {
    process.stdout.write(`${JSON.stringify(jobs, null, 2)}\n`);
    return;
  }
  if (format !== "table") throw new Error(`unknown output format ${format}: table or json`);
  const rows = [
    ["ID", "STATE", "IMAGE", "SOURCE", "BLOBS", "BYTES"],
    ...jobs.map((j) => [
      j.id,
      j.state,
      j.image,
      j.source,
      `${j.progress.blobsDone}/${j.progress.blobsTotal}`,
      `${formatBytes(j.progress.bytesDone)} / ${formatBytes(j.progress.bytesTotal)}`,
    ]),
  ];
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  for (const row of rows) {
    process.stdout.write(
      `${row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd()}\n`,
    );
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
