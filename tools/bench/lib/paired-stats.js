// The paired A/B's verdict: per order the median of the windows' new ÷ old, then the geometric mean of the two orders.
'use strict';
const { median } = require('./report');

/**
 * `newFirst` and `oldFirst`: the windows of the two orders, each { gatewayNew, gatewayOld,
 * echoNew, echoOld } in CPU µs per request. The side started first pays a few % more, so each
 * order's median ratio is biased one way and the other's the other way; their geometric mean
 * cancels the bias (a ratio r one way and r' the other give sqrt(r * r')).
 */
function pairedVerdict(newFirst, oldFirst) {
  const orderRatio = (windows, key) => median(windows.map((w) => w[`${key}New`] / w[`${key}Old`]));
  const of = (key) => {
    const orders = [orderRatio(newFirst, key), orderRatio(oldFirst, key)];
    return { value: Math.sqrt(orders[0] * orders[1]), orders };
  };
  const gateway = of('gateway');
  const echo = of('echo');
  return {
    gateway: gateway.value,
    gatewayOrders: gateway.orders,
    echo: echo.value,
    echoOrders: echo.orders,
  };
}

module.exports = { pairedVerdict };
