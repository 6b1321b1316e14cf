/** The path of the bundled CLI for the current source tree, built once per process. */
export function runtimeBundle(): Promise<string>;
