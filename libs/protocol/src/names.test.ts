import { RESERVED_NAMES, SERVICE_NAME, serviceNameProblem } from './names';

test.each([
  ['echo', undefined],
  ['a', undefined],
  ['order-events-2', undefined],
  ['Echo', 'invalid'],
  ['1echo', 'invalid'],
  ['echo.dlq', 'invalid'],
  ['amq.gen-x', 'invalid'],
  ['a'.repeat(64), 'invalid'],
  ['', 'invalid'],
  ['services', 'reserved'],
  ['events', 'reserved'],
  ['heartbeat', 'reserved'],
  ['registry', 'reserved'],
])('%p -> %p', (name, problem) => {
  expect(serviceNameProblem(name)).toBe(problem);
});

test('every reserved name matches the pattern (else it would need no reserving)', () => {
  for (const n of RESERVED_NAMES) expect(SERVICE_NAME.test(n)).toBe(true);
});
