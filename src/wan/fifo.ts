// A first-in first-out queue with O(1) shift. The WAN pipes keep one entry per chunk in
// flight, and Array#shift is O(n), which turns a queue of many small chunks quadratic.

export class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  /** Replaces the first item (used to keep the unsent tail of a split chunk in place). */
  replaceHead(item: T): void {
    if (this.head >= this.items.length) throw new Error("Fifo.replaceHead on an empty queue");
    this.items[this.head] = item;
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head++;
    if (this.head === this.items.length) {
      this.clear();
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      // Compact now and then so the dead prefix never outgrows the live entries.
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}
