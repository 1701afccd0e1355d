// A table of entries keyed by string ids that come and go at a high rate (RPC calls awaiting replies).
//
// The entries live in an array of slots; a Map only turns an id into its slot number. Why not a
// Map of the entries themselves: a Map that gains and loses an entry per call rebuilds its hash
// table every few hundred calls, and V8 links each discarded table, still holding the entries it
// had, to its successor. Once one discarded table is in the old generation, every later one, with
// the calls and requests its entries reach, survives the young-generation collections and is moved
// to the old generation too, until the next full collection (docs/performance/notes.md: the gateway
// moved ~2 MB per young collection and its RSS climbed). Discarded tables of this Map hold only ids
// and slot numbers. (A prototype-less dictionary object has no such links, but each random id used
// as a property name is added to V8's string table: ~1 µs more per call, measured.)
export class IdTable<V> {
  private readonly slotOf = new Map<string, number>();
  private readonly slots: (V | undefined)[] = [];
  private readonly free: number[] = [];

  get size(): number {
    return this.slotOf.size;
  }

  get(id: string): V | undefined {
    const slot = this.slotOf.get(id);
    return slot === undefined ? undefined : this.slots[slot];
  }

  /** Adds an entry (a second set of the same id replaces it). */
  set(id: string, value: V): void {
    const slot = this.slotOf.get(id);
    if (slot !== undefined) {
      this.slots[slot] = value;
      return;
    }
    const next = this.free.pop() ?? this.slots.length;
    this.slots[next] = value;
    this.slotOf.set(id, next);
  }

  /** Removes and returns the entry (undefined when there was none). */
  take(id: string): V | undefined {
    const slot = this.slotOf.get(id);
    if (slot === undefined) return undefined;
    this.slotOf.delete(id);
    const value = this.slots[slot];
    this.slots[slot] = undefined;
    this.free.push(slot);
    return value;
  }

  /** Removes every entry and returns them. */
  takeAll(): V[] {
    const all: V[] = [];
    for (const slot of this.slotOf.values()) all.push(this.slots[slot] as V);
    this.slotOf.clear();
    this.slots.length = 0;
    this.free.length = 0;
    return all;
  }
}
