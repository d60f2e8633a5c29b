// What a call threw, for asserting on the wasm core's error kind (`kind` and its details are
// fields of the thrown Error) rather than on message wording.
export function thrown(f: () => unknown): Error & Record<string, unknown> {
  try {
    f();
  } catch (error) {
    if (error instanceof Error) return error as Error & Record<string, unknown>;
    throw new Error(`threw a non-Error: ${String(error)}`);
  }
  throw new Error('did not throw');
}
