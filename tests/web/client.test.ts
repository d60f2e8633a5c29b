// LabClient's cancel paths, with a fake worker: the cancel message (and shared flag when the
// page is cross-origin isolated), and the restart fallback for a worker that ignores a cancel.
import { describe, expect, test, vi } from 'vitest';
import { LabClient } from '../../web/src/client';
import { CancelledError, ModelFormatError } from '../../web/src/errors';

class FakeWorker extends EventTarget {
  posted: unknown[] = [];
  terminated = false;
  postMessage(message: unknown): void {
    this.posted.push(message);
  }
  terminate(): void {
    this.terminated = true;
  }
  reply(data: unknown): void {
    this.dispatchEvent(new MessageEvent('message', { data }));
  }
}

function setup(hardCancelMs = 50) {
  const workers: FakeWorker[] = [];
  const client = new LabClient(() => {
    const w = new FakeWorker();
    workers.push(w);
    return w as unknown as Worker;
  }, hardCancelMs);
  return { client, workers };
}

describe('LabClient', () => {
  test('results, progress and typed errors are routed by request id', async () => {
    const { client, workers } = setup();
    const progress = vi.fn();
    const a = client.call('init', {}, progress);
    const b = client.call('histogram', { tensor: 'x', bins: 4 });
    const [ra, rb] = workers[0]!.posted as { id: number }[];
    workers[0]!.reply({ kind: 'progress', id: ra!.id, phase: 'read', loaded: 1, total: 2 });
    workers[0]!.reply({ kind: 'error', id: rb!.id, error: { name: 'ModelFormatError', message: 'bad' } });
    workers[0]!.reply({ kind: 'result', id: ra!.id, value: { coreVersion: '1', formats: '' } });
    await expect(a).resolves.toEqual({ coreVersion: '1', formats: '' });
    await expect(b).rejects.toBeInstanceOf(ModelFormatError);
    expect(progress).toHaveBeenCalledWith('read', 1, 2, undefined);
  });

  test('cancel posts a cancel message; a worker that stops in time is kept', async () => {
    const { client, workers } = setup();
    const handle = client.startCall('analyzeTensors', { format: 'nf4', outlierK: 6 });
    const { id } = workers[0]!.posted[0] as { id: number };
    handle.cancel();
    expect(workers[0]!.posted[1]).toEqual({ cancel: id });
    workers[0]!.reply({ kind: 'error', id, error: { name: 'CancelledError', message: 'cancelled: stopped' } });
    await expect(handle.result).rejects.toBeInstanceOf(CancelledError);
    await new Promise((r) => setTimeout(r, 80));
    expect(workers).toHaveLength(1);
    expect(workers[0]!.terminated).toBe(false);
  });

  test('a worker that ignores the cancel is terminated and replaced; onRestart fires', async () => {
    const { client, workers } = setup();
    const restarted = vi.fn();
    client.onRestart = restarted;
    const handle = client.startCall('compareFormats', { formats: ['q8_0'], ctx: 128, maxWindows: 1, dataUrl: 'x', saved: [] });
    handle.cancel();
    await expect(handle.result).rejects.toBeInstanceOf(CancelledError);
    expect(workers[0]!.terminated).toBe(true);
    expect(workers).toHaveLength(2);
    expect(restarted).toHaveBeenCalledOnce();
    // The new worker serves calls.
    const next = client.call('init', {});
    const { id } = workers[1]!.posted[0] as { id: number };
    workers[1]!.reply({ kind: 'result', id, value: { coreVersion: '2', formats: '' } });
    await expect(next).resolves.toEqual({ coreVersion: '2', formats: '' });
  });
});
