import { Test } from '@nestjs/testing';
import { AppError } from '../common/app-error';
import { RunningJobs } from './running-jobs';
import { StopRegistry } from './stop.registry';

describe('RunningJobs', () => {
  let stops: StopRegistry;
  let jobs: RunningJobs<{ done: Promise<void> }>;

  beforeEach(async () => {
    const module = await Test.createTestingModule({ providers: [StopRegistry] }).compile();
    stops = module.get(StopRegistry);
    jobs = new RunningJobs(stops);
  });

  const job = () => {
    let end!: () => void;
    const done = new Promise<void>((resolve) => (end = resolve));
    return { done, end };
  };

  it('counts jobs per owner, makes them stoppable by their owner, and takes each out once', async () => {
    const a = job();
    const b = job();
    const stopA = jest.fn();
    jobs.add('a', 'u1', a, stopA);
    jobs.add('b', 'u1', b, () => undefined);
    expect([jobs.size, jobs.countFor('u1'), jobs.countFor('u2')]).toEqual([2, 2, 0]);
    await expect(stops.stop('a', 'u2')).rejects.toBeInstanceOf(AppError);
    await stops.stop('a', 'u1');
    expect(stopA).toHaveBeenCalledTimes(1);
    expect(jobs.remove('a', a)).toBe(true);
    expect(jobs.remove('a', a)).toBe(false);
    expect(stops.isRunning('a')).toBe(false);
    expect([jobs.size, jobs.countFor('u1'), jobs.get('b')]).toEqual([1, 1, b]);
  });

  it('drain refuses new jobs, waits for those that end, and answers those still running', async () => {
    const ending = job();
    const stuck = job();
    jobs.add('ending', 'u1', ending, () => undefined);
    jobs.add('stuck', 'u2', stuck, () => undefined);
    ending.done.then(() => jobs.remove('ending', ending)).catch(() => undefined);
    ending.end();
    const left = await jobs.drain(20);
    expect(left).toEqual([stuck]);
    expect(jobs.isAccepting).toBe(false);
    expect(() => jobs.assertAccepting()).toThrow(AppError);
  });
});
