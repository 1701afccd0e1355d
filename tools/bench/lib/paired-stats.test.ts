// The paired A/B's verdict on made-up windows: no broker, no processes, no load.
import { pairedVerdict } from './paired-stats';

const w = (gatewayNew: number, gatewayOld: number, echoNew = 30, echoOld = 30) => ({
  gatewayNew,
  gatewayOld,
  echoNew,
  echoOld,
});

test("the two orders' biases cancel: the started-first side pays 5 % in both runs", () => {
  // True ratio 0.9: new first reads 0.9 * 1.05, old first 0.9 / 1.05.
  const newFirst = [w(94.5, 100), w(189, 200), w(47.25, 50)];
  const oldFirst = [w(90, 105), w(180, 210), w(45, 52.5)];
  const v = pairedVerdict(newFirst, oldFirst);
  expect(v.gatewayOrders[0]).toBeCloseTo(0.945, 6);
  expect(v.gatewayOrders[1]).toBeCloseTo(0.9 / 1.05, 6);
  expect(v.gateway).toBeCloseTo(0.9, 6);
  expect(v.echo).toBeCloseTo(1, 6);
});

test('one disturbed window does not move the verdict (medians, not means)', () => {
  const steady = [w(90, 100), w(90, 100), w(90, 100), w(90, 100)];
  const disturbed = [w(90, 100), w(90, 100), w(300, 100), w(90, 100), w(90, 100)];
  expect(pairedVerdict(steady, disturbed).gateway).toBeCloseTo(0.9, 6);
  expect(pairedVerdict(disturbed, steady).echoOrders).toEqual([1, 1]);
});
