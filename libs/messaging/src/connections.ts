// A process's two broker connections: one publishes, one consumes, so a resource alarm that blocks publishing does not stall deliveries and acks.
import { Broker, type BrokerOptions } from './broker';

export type ConnectionRole = 'publish' | 'consume';

export interface ConnectionsOptions extends Omit<BrokerOptions, 'role' | 'onReconnect'> {
  /** Called after each successful reconnect of either connection (not the first connect). */
  onReconnect?: (role: ConnectionRole) => void;
}

/**
 * RabbitMQ blocks a connection that publishes while a memory or disk alarm is in effect: it stops
 * reading from its socket, acks included. So, as RabbitMQ advises, every Warren process has two
 * connections: `publish` (publishers, RPC clients: requests, replies, retry and dead-letter copies,
 * heartbeats) and `consume` (consumers, the gateway's registry listener and queue inspector: their
 * deliveries and acks). Each reconnects on its own; named `<connectionName>:publish` and
 * `<connectionName>:consume` in the management UI.
 */
export class Connections {
  private constructor(
    readonly publish: Broker,
    readonly consume: Broker,
  ) {}

  /** Opens both (in parallel); when either fails, the other is closed and the error thrown. */
  static async connect(options: ConnectionsOptions): Promise<Connections> {
    const { onReconnect } = options;
    const open = (role: ConnectionRole) =>
      Broker.connect({
        ...options,
        role,
        connectionName: `${options.connectionName}:${role}`,
        onReconnect: onReconnect && (() => onReconnect(role)),
      });
    const [publish, consume] = await Promise.allSettled([open('publish'), open('consume')]);
    if (publish.status === 'fulfilled' && consume.status === 'fulfilled')
      return new Connections(publish.value, consume.value);
    if (publish.status === 'fulfilled') await publish.value.close();
    if (consume.status === 'fulfilled') await consume.value.close();
    throw publish.status === 'rejected'
      ? publish.reason
      : (consume as PromiseRejectedResult).reason;
  }

  /** The broker user both connect as (what the broker checks a message's `user-id` against). */
  get user(): string {
    return this.publish.user;
  }

  /** Both connected, and publishing not blocked by a resource alarm. */
  get isUsable(): boolean {
    return this.publish.isUsable && this.consume.state === 'connected';
  }

  /** Consuming side first (its channels are cancelled and closed by their owners before). */
  async close(): Promise<void> {
    await this.consume.close();
    await this.publish.close();
  }
}
