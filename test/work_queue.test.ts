import { describe, expect, it } from 'vitest';

import { WorkQueue } from '../lib/work_queue.js';

describe('WorkQueue', () => {
  it('starts a call made while idle before run() returns, and later calls in order after it', async () => {
    const queue = new WorkQueue();
    const events: string[] = [];
    let finishFirst!: () => void;
    const first = queue.run(() => {
      events.push('first started');
      return new Promise<string>((resolve) => (finishFirst = () => resolve('first')));
    });
    expect(events).toEqual(['first started']);
    expect(queue.idle).toBe(false);
    const second = queue.run(async () => {
      events.push('second started');
      return 'second';
    });
    expect(events).toEqual(['first started']);
    finishFirst();
    expect(await Promise.all([first, second])).toEqual(['first', 'second']);
    expect(events).toEqual(['first started', 'second started']);
  });

  it('is idle again when the caller of its last call hears back, resolved or rejected', async () => {
    const queue = new WorkQueue();
    await queue.run(async () => 1);
    expect(queue.idle).toBe(true);
    await expect(queue.run(async () => Promise.reject(new Error('no')))).rejects.toThrow('no');
    expect(queue.idle).toBe(true);
    await expect(
      queue.run(() => {
        throw new Error('thrown');
      }),
    ).rejects.toThrow('thrown');
    expect(queue.idle).toBe(true);
  });

  it('goes on after a call that fails, and rejects the calls not started when told to', async () => {
    const queue = new WorkQueue();
    const failing = queue.run(async () => Promise.reject(new Error('first')));
    const next = queue.run(async () => 'next');
    await expect(failing).rejects.toThrow('first');
    await expect(next).resolves.toBe('next');
    let finish!: () => void;
    const running = queue.run(() => new Promise<void>((resolve) => (finish = resolve)));
    const waiting = queue.run(async () => 'never');
    queue.rejectPending(() => new Error('disposed'));
    await expect(waiting).rejects.toThrow('disposed');
    finish();
    await running;
    expect(queue.idle).toBe(true);
  });
});
