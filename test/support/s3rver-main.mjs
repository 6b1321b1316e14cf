// Runs s3rver in a child process for tests (so that its memory never counts against the
// process under test): `node s3rver-main.mjs <directory> <bucket>` listens on a port the
// OS picks on 127.0.0.1, creates the bucket, and prints {"port": n} once it answers.
import S3rver from "s3rver";

const [directory, bucket] = process.argv.slice(2);
const server = new S3rver({
  address: "127.0.0.1",
  port: 0,
  directory,
  silent: true,
  vhostBuckets: false,
  configureBuckets: [{ name: bucket, configs: [] }],
});
const address = await server.run();
process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
process.on("SIGTERM", () => {
  server.close().then(() => process.exit(0));
});
