import { Routes } from '../src/compat';

describe('httprouter-style route table', () => {
  const routes = new Routes();
  const handler = () => undefined;
  routes.add(['GET', 'HEAD'], '/image/:schematic/:version/:path', handler);
  routes.add(['GET'], '/versions', handler);

  test('a parameter is one decoded path segment', () => {
    const [hit] = routes.match('/image/abc/v1.11.0/metal%2Damd64.iso');
    expect(hit.def.name).toBe('/image/:schematic/:version/:path');
    expect(hit.params).toEqual({ schematic: 'abc', version: 'v1.11.0', path: 'metal-amd64.iso' });
    expect(routes.match('/image/abc/v1.11.0/a/b')).toEqual([]);
  });

  test('an undecodable segment is kept as sent; unknown paths match nothing', () => {
    expect(routes.match('/image/abc/v1/%E0%A4%A')[0].params.path).toBe('%E0%A4%A');
    expect(routes.match('/versions/')).toEqual([]);
  });
});
