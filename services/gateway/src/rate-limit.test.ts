// Unit: the per-client rate limit: counting, windows, RateLimit headers and how clients are keyed.
import { ipKeyGenerator } from 'express-rate-limit';
import { RateLimiter } from './rate-limit';

describe('RateLimiter', () => {
  let limiter: RateLimiter;
  afterEach(() => limiter.close());

  it('allows `limit` hits per window per client, then refuses with the time to reset', async () => {
    limiter = new RateLimiter(2, 60_000);
    const a1 = await limiter.hit('a');
    const a2 = await limiter.hit('a');
    const a3 = await limiter.hit('a');
    expect([a1.allowed, a2.allowed, a3.allowed]).toEqual([true, true, false]);
    expect(a3.resetS).toBeGreaterThan(0);
    expect(a3.resetS).toBeLessThanOrEqual(60);
    expect((await limiter.hit('b')).allowed).toBe(true);
  });

  it('answers the draft-7 headers with the remaining budget', async () => {
    limiter = new RateLimiter(3, 30_000);
    const d = await limiter.hit('c');
    expect(d.headers[0]).toBe('ratelimit-policy');
    expect(d.headers[1]).toBe('3;w=30');
    expect(d.headers[2]).toBe('ratelimit');
    expect(d.headers[3]).toMatch(/^limit=3, remaining=2, reset=(29|30)$/);
    await limiter.hit('c');
    await limiter.hit('c');
    expect((await limiter.hit('c')).headers[3]).toMatch(/remaining=0/);
  });

  it('starts a new window once the old one has passed', async () => {
    limiter = new RateLimiter(1, 100);
    expect((await limiter.hit('d')).allowed).toBe(true);
    expect((await limiter.hit('d')).allowed).toBe(false);
    await new Promise((r) => setTimeout(r, 150));
    expect((await limiter.hit('d')).allowed).toBe(true);
  });

  it('keys clients by API key index, else by IP with IPv6 grouped per /56', () => {
    expect(RateLimiter.clientKey(2, '10.0.0.1')).toBe('key:2');
    expect(RateLimiter.clientKey(undefined, '10.0.0.1')).toBe('10.0.0.1');
    expect(RateLimiter.clientKey(undefined, '2001:db8:0:1::1')).toBe(
      RateLimiter.clientKey(undefined, '2001:db8:0:ff::2'),
    );
    expect(RateLimiter.clientKey(undefined, '2001:db8:0:100::1')).not.toBe(
      RateLimiter.clientKey(undefined, '2001:db8:0:1::1'),
    );
  });

  it('gives the library’s key for every address form, the first time and from its cache', () => {
    const addresses = ['10.0.0.1', '::ffff:10.0.0.1', '::1', '::', '2001:db8::5', 'fe80::1'];
    // More distinct IPv6 clients than the cache holds: it empties and goes on.
    for (let i = 0; i < 5000; i++) addresses.push(`2001:db8:${i.toString(16)}::1`);
    for (const round of [1, 2])
      for (const ip of addresses)
        expect([round, ip, RateLimiter.clientKey(undefined, ip)]).toEqual([
          round,
          ip,
          ipKeyGenerator(ip),
        ]);
    expect(RateLimiter.clientKey(undefined, '::ffff:10.0.0.1')).toBe('10.0.0.1');
  });
});
