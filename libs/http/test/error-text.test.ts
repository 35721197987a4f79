import { errorTextLine } from '../src';

test('an error text is one line: control characters a client sent are escaped, the rest is kept as written', () => {
  expect(errorTextLine('invalid referrers subject digest: sha256:deadbeef')).toBe('invalid referrers subject digest: sha256:deadbeef\n');
  expect(errorTextLine('invalid referrers subject digest: sha256:\n')).toBe('invalid referrers subject digest: sha256:\\n\n');
  expect(errorTextLine('unknown image: a\r\nb\tc\x00d\x7fe\x1b')).toBe('unknown image: a\\r\\nb\\tc\\x00d\\x7fe\\x1b\n');
  // quotes, backslashes and non-ASCII text are not controls
  expect(errorTextLine('invalid version "v1.é\\x"')).toBe('invalid version "v1.é\\x"\n');
  for (const m of ['a\nb', '\n\n', 'x\u2028y']) expect(errorTextLine(m).split('\n')).toHaveLength(2);
});
