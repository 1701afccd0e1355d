// A process's live JS heap, measured exactly: V8 writes a heap snapshot (after a full collection) on a signal.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { scaled, sleep } from '../../support/time';

interface Snapshot {
  snapshot: { meta: { node_fields: string[] } };
  nodes: number[];
}

/**
 * Start the process with `env()` in its environment; `measure(pid)` then signals it, waits for
 * the snapshot V8 writes (it collects garbage first), sums the size of every object in it and
 * deletes the file. Sampled "heap in use" figures rise and fall with the collector's schedule;
 * this is what the process actually keeps alive.
 */
export class LiveHeap {
  private readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'warren-heap-'));

  env(): Record<string, string> {
    return { NODE_OPTIONS: `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${this.dir}` };
  }

  async measure(pid: number, timeoutMs = 30_000): Promise<number> {
    for (const f of fs.readdirSync(this.dir)) fs.rmSync(path.join(this.dir, f), { force: true });
    process.kill(pid, 'SIGUSR2');
    const deadline = Date.now() + scaled(timeoutMs);
    while (Date.now() < deadline) {
      await sleep(200);
      const file = fs.readdirSync(this.dir).find((f) => f.endsWith('.heapsnapshot'));
      if (!file) continue;
      let parsed: Snapshot;
      try {
        parsed = JSON.parse(fs.readFileSync(path.join(this.dir, file), 'utf8')) as Snapshot;
      } catch {
        continue; // still being written
      }
      fs.rmSync(path.join(this.dir, file), { force: true });
      const fields = parsed.snapshot.meta.node_fields;
      const size = fields.indexOf('self_size');
      let total = 0;
      for (let i = size; i < parsed.nodes.length; i += fields.length) total += parsed.nodes[i] ?? 0;
      return total;
    }
    throw new Error(`no heap snapshot from ${pid} within ${timeoutMs} ms`);
  }

  close(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
