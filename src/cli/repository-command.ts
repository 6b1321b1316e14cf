// `meridian repository show <repo>:<tag>`: for each region, whether the tag's current
// manifest is visible there, pending (since when, and what is missing) or absent.
import type { Command } from "commander";
import { stringify as toYaml } from "yaml";
import type { ImageLocation, RegionImage } from "../control/image-locator.ts";
import { AdminClient } from "./admin-client.ts";
import { outputFormat } from "./replication-output.ts";

export function registerRepositoryCommand(program: Command): void {
  const repository = program.command("repository").description("look at repositories");
  repository
    .command("show <image>")
    .description("where <repository>:<tag> is visible, pending or absent, region by region")
    .option("--registry <endpoint>", "any replica of the registry (env MERIDIAN_REGISTRY)")
    .option("-o, --output <format>", "table, json or yaml", "table")
    .action(async (image: string, flags: { registry?: string; output: string }) => {
      const format = outputFormat(flags.output);
      const { repository: name, tag } = splitImage(image);
      const client = await AdminClient.resolve(flags.registry);
      const query = `repository=${encodeURIComponent(name)}&tag=${encodeURIComponent(tag)}`;
      const location = (await client.request("GET", `image?${query}`)) as ImageLocation;
      if (format === "json") process.stdout.write(`${JSON.stringify(location, null, 2)}\n`);
      else if (format === "yaml") process.stdout.write(toYaml(location));
      else process.stdout.write(`${table(location)}\n`);
    });
}

/** `team/app:v1` -> team/app and v1; without a tag, latest (as docker pull does). */
function splitImage(image: string): { repository: string; tag: string } {
  const slash = image.lastIndexOf("/");
  const colon = image.lastIndexOf(":");
  if (colon > slash) return { repository: image.slice(0, colon), tag: image.slice(colon + 1) };
  return { repository: image, tag: "latest" };
}

function table(location: ImageLocation): string {
  const lines = [
    `${location.repository}:${location.tag} is ${location.digest}`,
    `${"REGION".padEnd(16)} ${"STATE".padEnd(8)} DETAIL`,
  ];
  for (const region of location.regions) {
    lines.push(`${region.region.padEnd(16)} ${region.state.padEnd(8)} ${detail(region)}`);
  }
  return lines.join("\n");
}

function detail(region: RegionImage): string {
  if (region.state === "visible") return region.since ? `since ${region.since}` : "";
  if (region.state === "absent") return region.reason ?? "";
  const missing = region.missing;
  const parts = [
    ...(missing?.manifest ? ["the manifest"] : []),
    ...(missing && missing.blobs.length > 0 ? [`${missing.blobs.length} blobs`] : []),
  ];
  const waiting = parts.length > 0 ? `waiting for ${parts.join(" and ")}` : "waiting for the tag";
  return `${waiting}${region.since ? ` since ${region.since}` : ""}`;
}
