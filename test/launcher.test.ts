// Each launcher's environment, read as pincoh exec reads it (issue 10). The
// real launchers run in test/cluster.e2e.test.ts (Open MPI); Slurm's mapping
// is tested here only (see docs/running.md, On a cluster).

import { describe, expect, it } from 'vitest';
import { jobName, placementFrom, slurmTasksOn } from '../src/job/launcher.js';

describe('placementFrom', () => {
  it('Open MPI (ORTE): global and node-local ranks, the job from OMPI_MCA_ess_base_jobid', () => {
    expect(placementFrom({ OMPI_COMM_WORLD_RANK: '5', OMPI_COMM_WORLD_SIZE: '8', OMPI_COMM_WORLD_LOCAL_RANK: '1', OMPI_COMM_WORLD_LOCAL_SIZE: '4', OMPI_MCA_ess_base_jobid: '2516582401' })).toEqual({
      launcher: 'Open MPI', rank: 5, size: 8, localRank: 1, localSize: 4, job: '2516582401',
    });
  });

  it('Open MPI 5 (PRRTE): the job from PMIX_NAMESPACE', () => {
    expect(placementFrom({ OMPI_COMM_WORLD_RANK: '0', OMPI_COMM_WORLD_SIZE: '2', OMPI_COMM_WORLD_LOCAL_RANK: '0', OMPI_COMM_WORLD_LOCAL_SIZE: '2', PMIX_NAMESPACE: 'prterun-n1-123@1' }).job).toBe('prterun-n1-123@1');
  });

  it('Slurm: the local size from SLURM_STEP_TASKS_PER_NODE at this node, the job from the job and step ids', () => {
    const env = { SLURM_PROCID: '6', SLURM_NTASKS: '7', SLURM_LOCALID: '0', SLURM_NODEID: '3', SLURM_STEP_TASKS_PER_NODE: '2(x3),1', SLURM_JOB_ID: '4242', SLURM_STEP_ID: '1' };
    expect(placementFrom(env)).toEqual({ launcher: 'Slurm', rank: 6, size: 7, localRank: 0, localSize: 1, job: '4242.1' });
    expect(placementFrom({ ...env, SLURM_PROCID: '3', SLURM_NODEID: '1', SLURM_LOCALID: '1' })).toMatchObject({ localRank: 1, localSize: 2 });
  });

  it('MPICH Hydra, with PMI_KVSNAME or PINCOH_JOB naming the job', () => {
    const env = { PMI_RANK: '3', PMI_SIZE: '4', MPI_LOCALRANKID: '1', MPI_LOCALNRANKS: '2', PMI_KVSNAME: 'kvs_1234_0' };
    expect(placementFrom(env)).toEqual({ launcher: 'MPICH Hydra', rank: 3, size: 4, localRank: 1, localSize: 2, job: 'kvs_1234_0' });
    const { PMI_KVSNAME: _, ...without } = env;
    expect(() => placementFrom(without, () => undefined)).toThrow(/looks like MPICH Hydra's but lacks what gives job/);
    expect(placementFrom({ ...without, PINCOH_JOB: 'mine' }).job).toBe('mine');
    // Hydra 4 sets no PMI_KVSNAME: its proxy, the rank's parent, names the job on the node
    expect(placementFrom(without, () => 'hydra-77-1234').job).toBe('hydra-77-1234');
    expect(placementFrom(env, () => 'hydra-77-1234').job).toBe('kvs_1234_0');
  });

  it('PMIx alone: the local rank and size must be given (PINCOH_LOCAL_RANK, PINCOH_LOCAL_SIZE)', () => {
    expect(() => placementFrom({ PMIX_RANK: '1', PMIX_NAMESPACE: 'ns' })).toThrow(/lacks what gives localRank, localSize/);
    expect(placementFrom({ PMIX_RANK: '1', PMIX_NAMESPACE: 'ns', PINCOH_LOCAL_RANK: '1', PINCOH_LOCAL_SIZE: '2' })).toMatchObject({ launcher: 'PMIx', localRank: 1, localSize: 2, job: 'ns' });
  });

  it('no launcher: an error that names every variable it looked for', () => {
    let err: any;
    try {
      placementFrom({ HOME: '/root' });
    } catch (e) {
      err = e;
    }
    expect(err.code).toBe('PINCOH_ERR_LAUNCHER');
    for (const v of ['OMPI_COMM_WORLD_RANK', 'SLURM_PROCID', 'PMI_RANK', 'PMIX_RANK', 'pincoh run']) expect(err.message).toContain(v);
  });

  it('a placement that is not one (a rank past its size, locally or in the job) is refused', () => {
    expect(() => placementFrom({ OMPI_COMM_WORLD_RANK: '0', OMPI_COMM_WORLD_SIZE: '2', OMPI_COMM_WORLD_LOCAL_RANK: '2', OMPI_COMM_WORLD_LOCAL_SIZE: '2', OMPI_MCA_ess_base_jobid: '1' })).toThrow(/local rank 2 of 2/);
    expect(() => placementFrom({ OMPI_COMM_WORLD_RANK: '4', OMPI_COMM_WORLD_SIZE: '4', OMPI_COMM_WORLD_LOCAL_RANK: '0', OMPI_COMM_WORLD_LOCAL_SIZE: '2', OMPI_MCA_ess_base_jobid: '1' })).toThrow(/rank 4 of 4: not a placement/);
    expect(placementFrom({ PMIX_RANK: '7', PMIX_NAMESPACE: 'ns', PINCOH_LOCAL_RANK: '0', PINCOH_LOCAL_SIZE: '1' }).size).toBe(0); // PMIx without a size: not known, not refused
  });
});

describe('slurmTasksOn and jobName', () => {
  it('expands the compressed Slurm task counts', () => {
    expect([0, 1, 2, 3, 4].map((n) => slurmTasksOn('2(x3),1', n))).toEqual([2, 2, 2, 1, undefined]);
    expect(slurmTasksOn('bad', 0)).toBeUndefined();
  });

  it('keeps short job names, hashes long ones into 31 bytes (the limit of PINCOH_JOB)', () => {
    expect(jobName('4242.1')).toBe('4242.1');
    const long = jobName('prterun-a-very-long-hostname-12345@1');
    expect(long).toMatch(/^j[0-9a-f]{30}$/);
    expect(jobName('prterun-a-very-long-hostname-12345@2')).not.toBe(long);
  });
});
