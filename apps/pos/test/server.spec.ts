import { configScript, startPosServer, type PosServer } from '../src/server';

describe('startPosServer', () => {
  let pos: PosServer;
  let tokens = 0;
  beforeAll(async () => {
    pos = await startPosServer({ port: 0, apiBaseUrl: () => 'http://localhost:3999', token: () => `tok-${++tokens}` });
  }, 60_000);
  afterAll(() => pos?.close());

  it('serves the page, the bundle and a config.js with the API address and a fresh token per load', async () => {
    const page = await fetch(`${pos.url}/`);
    expect(page.headers.get('content-type')).toContain('text/html');
    const html = await page.text();
    expect(html).toContain('src="/config.js"');
    expect(html).toContain('src="/app.js"');
    const js = await fetch(`${pos.url}/app.js`);
    expect(js.headers.get('content-type')).toContain('javascript');
    expect((await js.text()).length).toBeGreaterThan(10_000);
    const c1 = await (await fetch(`${pos.url}/config.js`)).text();
    const c2 = await (await fetch(`${pos.url}/config.js`)).text();
    expect(c1).toBe('window.SMARTDUKA_POS = {"apiBaseUrl":"http://localhost:3999","token":"tok-1"};\n');
    expect(c2).toContain('"token":"tok-2"');
  });

  it('answers 404 for anything else and 405 for a POST; nothing is cached', async () => {
    const missing = await fetch(`${pos.url}/../package.json`);
    expect(missing.status).toBe(404);
    expect((await fetch(`${pos.url}/src/server.ts`)).status).toBe(404);
    expect((await fetch(`${pos.url}/`, { method: 'POST' })).status).toBe(405);
    expect((await fetch(`${pos.url}/config.js`)).headers.get('cache-control')).toBe('no-store');
  });

  it("config.js (the dev token) is not given to another site's page", async () => {
    const cross = await fetch(`${pos.url}/config.js`, { headers: { 'Sec-Fetch-Site': 'cross-site' } });
    expect(cross.status).toBe(403);
    expect(await cross.text()).not.toContain('tok-');
    expect((await fetch(`${pos.url}/config.js`, { headers: { 'Sec-Fetch-Site': 'same-site' } })).status).toBe(403);
    expect((await fetch(`${pos.url}/config.js`, { headers: { 'Sec-Fetch-Site': 'same-origin' } })).status).toBe(200);
  });

  it('config.js cannot be broken out of', () => {
    expect(configScript('http://x', '</script><script>alert(1)</script>')).not.toContain('</script>');
  });
});
