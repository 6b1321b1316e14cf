// Runs a test body against a fresh fixture and always cleans it up: the shape every
// shared driver suite uses for its cases.

export function withFixture<F extends { cleanup(): Promise<void> }>(
  open: () => Promise<F>,
  body: (fixture: F) => Promise<void>,
): () => Promise<void> {
  return async () => {
    const fixture = await open();
    try {
      await body(fixture);
    } finally {
      await fixture.cleanup();
    }
  };
}
