/**
 * A test that cannot run here is declared skipped, with its reason printed, instead of passing without checking
 * anything (an early `return` in its body). Decide the condition before the tests are declared (module load).
 */
type TestDeclaration = (name: string, fn: jest.ProvidesCallback, timeout?: number) => void;
type DescribeDeclaration = (name: string, fn: () => void) => void;

/** `test` when `condition` holds; otherwise the test is declared skipped, its name carries the reason, and it is printed. */
export function testIf(condition: boolean, reason: string): TestDeclaration {
  const declare = condition ? test : test.skip;
  return (name, fn, timeout) => declare(condition ? name : skippedName(name, reason), fn, timeout);
}

/** `describe` when `condition` holds; otherwise the block is declared skipped with its reason, which is printed. */
export function describeIf(condition: boolean, reason: string): DescribeDeclaration {
  const declare = condition ? describe : describe.skip;
  return (name, fn) => declare(condition ? name : skippedName(name, reason), fn);
}

function skippedName(name: string, reason: string): string {
  process.stderr.write(`[skipped] ${name}: ${reason}\n`);
  return `${name} (skipped: ${reason})`;
}
