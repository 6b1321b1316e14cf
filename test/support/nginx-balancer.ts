// nginx from Debian as the load balancer in front of a region's nodes, for tests: a
// throwaway configuration in a temp folder, round robin over the given upstreams on
// loopback, requests and answers streamed (no buffering, no body size limit), and a
// failed upstream tried on the next one. Without nginx installed, `nginxMissing()` says
// why and the tests skip with that reason, except in CI, where it is an error.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePorts } from "./cluster.ts";
import { waitFor } from "./wait-for.ts";

const nginxBin = process.env.NGINX_BIN ?? "/usr/sbin/nginx";

export function nginxMissing(): string | undefined {
  if (existsSync(nginxBin)) return undefined;
  const reason = `nginx is not installed (${nginxBin}; Debian package nginx-light)`;
  if (process.env.CI) throw new Error(`${reason}: required in CI`);
  return reason;
}

export interface Balancer {
  readonly url: string;
  readonly host: string;
  stop(): Promise<void>;
}

export async function startBalancer(upstreams: readonly string[]): Promise<Balancer> {
  const dir = await mkdtemp(join(tmpdir(), "meridian-nginx-"));
  const [port] = await freePorts(1);
  for (const temp of ["body", "proxy", "fastcgi", "uwsgi", "scgi"]) {
    await mkdir(join(dir, temp));
  }
  const servers = upstreams
    .map((upstream) => `    server ${upstream} max_fails=1 fail_timeout=2s;`)
    .join("\n");
  const config = `
user root;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream nodes {
${servers}
  }
  server {
    listen 127.0.0.1:${port};
    client_max_body_size 0;
    proxy_request_buffering off;
    proxy_buffering off;
    proxy_http_version 1.1;
    location / {
      proxy_pass http://nodes;
      proxy_set_header Host $http_host;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_next_upstream error timeout http_502;
      proxy_connect_timeout 2s;
      proxy_read_timeout 300s;
    }
  }
}
`;
  const file = join(dir, "nginx.conf");
  await writeFile(file, config);
  const child: ChildProcess = spawn(nginxBin, ["-p", dir, "-c", file], { stdio: "ignore" });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}`);
      return fetch(`${url}/`).then(
        () => true,
        () => false,
      );
    },
    "nginx to listen",
    10_000,
    50,
  );
  return {
    url,
    host: `127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGQUIT");
        await new Promise((resolve) => child.once("exit", resolve));
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
