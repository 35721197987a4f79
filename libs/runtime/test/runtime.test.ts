import { BoundedMap, memoPromise } from '../src';

test('BoundedMap forgets the oldest entry first and never exceeds its limit', () => {
  const m = new BoundedMap<string, number>(2);
  m.set('a', 1).set('b', 2).set('a', 3);
  expect([...m]).toEqual([['a', 3], ['b', 2]]);
  m.set('c', 4);
  expect([...m.keys()]).toEqual(['b', 'c']);
  expect(() => new BoundedMap(0)).toThrow('positive integer');
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
