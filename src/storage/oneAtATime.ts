/**
 * Runs work one piece after another per id, in this process: each waits for the previous one with
 * the same id to settle (whatever its outcome). Ids nobody waits on are forgotten.
 */
export class OneAtATime {
  private readonly tails = new Map<string, Promise<unknown>>();

  async run<T>(id: string, work: () => Promise<T>): Promise<T> {
    const before = this.tails.get(id) ?? Promise.resolve();
    const mine = before.catch(() => undefined).then(work);
    this.tails.set(id, mine);
    try {
      return await mine;
    } finally {
      if (this.tails.get(id) === mine) this.tails.delete(id);
    }
  }
}
