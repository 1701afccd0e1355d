import { ApiKeys, presentedKey } from './api-keys';

describe('ApiKeys', () => {
  const keys = new ApiKeys(['first-key-0123456789', 'second-key-0123456789']);
  it('matches configured keys only', () => {
    expect(keys.enabled).toBe(true);
    expect(keys.match('first-key-0123456789')).toBe(0);
    expect(keys.match('second-key-0123456789')).toBe(1);
    expect(keys.match('first-key-012345678')).toBe(-1);
    expect(keys.match('first-key-01234567890')).toBe(-1);
    expect(keys.match('')).toBe(-1);
    expect(keys.match(undefined)).toBe(-1);
    expect(keys.match('x'.repeat(5000))).toBe(-1);
  });
  it('is disabled without keys', () => {
    expect(new ApiKeys([]).enabled).toBe(false);
  });
});

describe('presentedKey', () => {
  it('reads Bearer (any case) first, then x-api-key', () => {
    expect(presentedKey({ authorization: 'Bearer abc' })).toBe('abc');
    expect(presentedKey({ authorization: 'bearer  abc ' })).toBe('abc');
    expect(presentedKey({ 'x-api-key': 'k' })).toBe('k');
    expect(presentedKey({ authorization: 'Basic abc', 'x-api-key': 'k' })).toBe('k');
    expect(presentedKey({ authorization: 'Basic abc' })).toBeUndefined();
    expect(presentedKey({})).toBeUndefined();
  });
});
