import { BoundedMap, memoPromise } from '../src';

test('BoundedMap forgets the oldest entry first and never exceeds its limit', () => {
  const m = new BoundedMap<string, number>(2);
  m.set('a', 1).set('b', 2).set('a', 3);
  expect([...m]).toEqual([['a', 3], ['b', 2]]);
  m.set('c', 4);
  expect([...m.keys()]).toEqual(['b', 'c']);
  expect(() => new BoundedMap(0)).toThrow('positive integer');
});

test('BoundedMap with a weight budget forgets the oldest entries until the rest fit, but keeps the one just set', () => {
  const m = new BoundedMap<string, string>(100, { maxWeight: 10, weigh: (v) => v.length });
  m.set('a', 'xxxx').set('b', 'xxxx');
  expect(m.weight).toBe(8);
  m.set('c', 'xxxx'); // 12 > 10: 'a' goes
  expect([...m.keys()]).toEqual(['b', 'c']);
  expect(m.weight).toBe(8);
  m.set('b', 'x'); // re-set: weight follows the new value, position kept
  expect([...m.keys()]).toEqual(['b', 'c']);
  expect(m.weight).toBe(5);
  m.delete('c');
  expect(m.weight).toBe(1);
  m.set('big', 'x'.repeat(50)); // alone above the budget: everything older goes, it stays (the caller just used it)
  expect([...m.keys()]).toEqual(['big']);
  m.clear();
  expect(m.weight).toBe(0);
});

test('memoPromise shares one load, remembers successes and forgets failures', async () => {
  const cache = new BoundedMap<string, Promise<number>>(10);
  let loads = 0;
  const ok = () => memoPromise(cache, 'k', async () => ++loads);
  expect(await Promise.all([ok(), ok()])).toEqual([1, 1]);
  expect(await ok()).toBe(1);
  const failing = memoPromise(cache, 'f', async () => {
    loads++;
    throw new Error('down');
  });
  await expect(failing).rejects.toThrow('down');
  expect(cache.has('f')).toBe(false);
  expect(await memoPromise(cache, 'f', async () => 7)).toBe(7);
  expect(loads).toBe(2);
});
