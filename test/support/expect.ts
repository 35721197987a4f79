/** Small assertion helpers shared by tests. */

/** The error `p` rejects with, asserted to be an instance of `type` (fails the test when `p` resolves). */
export async function rejectionOf<E extends Error>(p: Promise<unknown>, type: abstract new (...args: never[]) => E): Promise<E> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(type);
    return e as E;
  }
  throw new Error(`expected a rejection with ${type.name}`);
}
