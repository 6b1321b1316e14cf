// The resolve hook of report-imports.mjs: posts every specifier, then resolves as usual.
/** @type {import("node:worker_threads").MessagePort | undefined} */
let port;

/** @param {{ port: import("node:worker_threads").MessagePort }} data */
export function initialize(data) {
  port = data.port;
}

/**
 * @param {string} specifier
 * @param {unknown} context
 * @param {(specifier: string, context: unknown) => unknown} next
 */
export function resolve(specifier, context, next) {
  port?.postMessage(specifier);
  return next(specifier, context);
}
