// A table of entries keyed by string ids that come and go at a high rate (RPC calls awaiting replies).
//
// Not a Map: a Map that gains and loses an entry per call rebuilds its hash table every few
// hundred calls, and V8 links each discarded table (still holding the entries it had) to its
// successor. Once one discarded table is in the old generation, every later one, with the calls
// and requests its entries reach, survives the young-generation collections and is moved to the
// old generation too, until the next full collection (docs/performance/notes.md: the gateway
// moved ~2 MB per young collection and its RSS climbed). A prototype-less object in dictionary
// mode has no such links: a deleted entry is gone from it.
export class IdTable<V> {
  private entries: Record<string, V | undefined> = Object.create(null) as Record<
    string,
    V | undefined
  >;
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(id: string): V | undefined {
    return this.entries[id];
  }

  /** Adds an entry under a new id (ids are unique: a second set of the same id replaces it). */
  set(id: string, value: V): void {
    if (this.entries[id] === undefined) this.count++;
    this.entries[id] = value;
  }

  /** Removes and returns the entry (undefined when there was none). */
  take(id: string): V | undefined {
    const v = this.entries[id];
    if (v === undefined) return undefined;
    delete this.entries[id];
    this.count--;
    return v;
  }

  /** Removes every entry and returns them (in insertion order for string ids that are not integers). */
  takeAll(): V[] {
    const all = Object.values(this.entries) as V[];
    this.entries = Object.create(null) as Record<string, V | undefined>;
    this.count = 0;
    return all;
  }
}
