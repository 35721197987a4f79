/**
 * A test that cannot run here is declared skipped, with its reason printed, instead of passing without checking
 * anything (an early `return` in its body). Decide the condition before the tests are declared (module load).
 */
type TestDeclaration = (name: string, fn: jest.ProvidesCallback, timeout?: number) => void;

/** `test` when `condition` holds; otherwise declares the test skipped and prints why, once per test. */
export function testIf(condition: boolean, reason: string): TestDeclaration {
  if (condition) return (name, fn, timeout) => test(name, fn, timeout);
  return (name, fn, timeout) => {
    process.stderr.write(`[skipped] ${name}: ${reason}\n`);
    test.skip(`${name} (skipped: ${reason})`, fn, timeout);
  };
}

type DescribeDeclaration = (name: string, fn: () => void) => void;

/** `describe` when `condition` holds; otherwise declares the block skipped and prints why. */
export function describeIf(condition: boolean, reason: string): DescribeDeclaration {
  if (condition) return (name, fn) => describe(name, fn);
  return (name, fn) => {
    process.stderr.write(`[skipped] ${name}: ${reason}\n`);
    describe.skip(`${name} (skipped: ${reason})`, fn);
  };
}
