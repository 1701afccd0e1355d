import { SenderPolicy, checkReply, isMediaType, parseServiceUsers } from './reply';

describe('checkReply', () => {
  const ok = (status: number, contentType: string) => ({ ok: true, status, contentType });

  it('defaults status 200 and application/octet-stream', () => {
    expect(checkReply({}, 10, 100)).toEqual(ok(200, 'application/octet-stream'));
    expect(
      checkReply({ contentType: 'application/json', headers: { 'x-status': 201 } }, 1, 9),
    ).toEqual(ok(201, 'application/json'));
    expect(
      checkReply(
        { contentType: 'text/plain; charset="utf-8"', headers: { 'x-status': '404' } },
        1,
        9,
      ),
    ).toEqual(ok(404, 'text/plain; charset="utf-8"'));
  });

  it.each([
    [{ headers: { 'x-status': 199 } }, 'status'],
    [{ headers: { 'x-status': 600 } }, 'status'],
    [{ headers: { 'x-status': 200.5 } }, 'status'],
    [{ headers: { 'x-status': 'OK' } }, 'status'],
    [{ headers: { 'x-status': { n: 200 } } }, 'status'],
    [{ contentType: 'text/plain€' }, 'content-type'],
    [{ contentType: 'text/plain\r\nset-cookie: a=b' }, 'content-type'],
    [{ contentType: 'text/plain\u0000' }, 'content-type'],
    [{ contentType: 'nonsense' }, 'content-type'],
    [{ contentType: `text/${'a'.repeat(300)}` }, 'content-type'],
    [{ contentType: 42 }, 'content-type'],
  ])('%p is a bad reply (%s)', (fields, reason) => {
    expect(checkReply(fields, 1, 100)).toMatchObject({ ok: false, reason });
  });

  it('refuses a body over the limit', () => {
    expect(checkReply({}, 101, 100)).toMatchObject({ ok: false, reason: 'too-large' });
  });
});

test('isMediaType follows RFC 9110 with printable ASCII only', () => {
  expect(isMediaType('application/problem+json')).toBe(true);
  expect(isMediaType('multipart/form-data; boundary=abc')).toBe(true);
  expect(isMediaType('application/json;')).toBe(false);
  expect(isMediaType('/json')).toBe(false);
});

describe('SenderPolicy', () => {
  const policy = new SenderPolicy({ ownUser: 'gateway', users: new Map([['echo', 'svc-echo']]) });

  it("believes the service's user and the checker's own (a shared user), nobody else", () => {
    expect(policy.accepts('echo', 'svc-echo')).toBe(true);
    expect(policy.accepts('echo', 'gateway')).toBe(true);
    expect(policy.accepts('hello', 'hello')).toBe(true);
    expect(policy.accepts('echo', 'echo')).toBe(false);
    expect(policy.accepts('echo', 'rogue')).toBe(false);
    expect(policy.accepts('echo', undefined)).toBe(false);
  });

  it("accepts anything where the service shares the checker's user (nothing to tell apart)", () => {
    const shared = new SenderPolicy({ ownUser: 'guest', users: new Map([['*', 'guest']]) });
    expect(shared.accepts('echo', undefined)).toBe(true);
    expect(shared.accepts('echo', 'guest')).toBe(true);
    const mixed = new SenderPolicy({
      ownUser: 'guest',
      users: new Map([
        ['*', 'guest'],
        ['pay', 'pay'],
      ]),
    });
    expect(mixed.accepts('echo', undefined)).toBe(true);
    expect(mixed.accepts('pay', undefined)).toBe(false);
    expect(mixed.accepts('pay', 'pay')).toBe(true);
  });
});

test('parseServiceUsers reads service=user lists and refuses malformed entries', () => {
  expect([...parseServiceUsers(' echo=svc-echo, hello=h ,*=guest')]).toEqual([
    ['echo', 'svc-echo'],
    ['hello', 'h'],
    ['*', 'guest'],
  ]);
  expect(parseServiceUsers('').size).toBe(0);
  expect(() => parseServiceUsers('echo')).toThrow('not service=user');
  expect(() => parseServiceUsers('=x')).toThrow('not service=user');
});
