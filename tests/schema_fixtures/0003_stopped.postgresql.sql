BEGIN;

CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL, 
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);

-- Running upgrade  -> 0001_initial

CREATE TABLE experiments (
    name VARCHAR(255) NOT NULL, 
    created_at FLOAT NOT NULL, 
    updated_at FLOAT NOT NULL, 
    spec TEXT NOT NULL, 
    status VARCHAR(32) NOT NULL, 
    last_seq INTEGER NOT NULL, 
    CONSTRAINT pk_experiments PRIMARY KEY (name)
);

CREATE TABLE runs (
    run_id VARCHAR(255) NOT NULL, 
    experiment VARCHAR(255) NOT NULL, 
    trial_index INTEGER NOT NULL, 
    seq INTEGER NOT NULL, 
    status VARCHAR(32) NOT NULL, 
    has_started_training BOOLEAN NOT NULL, 
    has_completed_training BOOLEAN NOT NULL, 
    has_started_eval BOOLEAN NOT NULL, 
    has_been_evaluated BOOLEAN NOT NULL, 
    has_failed BOOLEAN NOT NULL, 
    is_stale BOOLEAN NOT NULL, 
    is_cancelled BOOLEAN NOT NULL, 
    created_at FLOAT NOT NULL, 
    started_at FLOAT, 
    completed_at FLOAT, 
    updated_at FLOAT NOT NULL, 
    last_heartbeat_at FLOAT, 
    cost FLOAT NOT NULL, 
    runtime FLOAT NOT NULL, 
    error TEXT, 
    tags TEXT NOT NULL, 
    summary TEXT NOT NULL, 
    train_job TEXT, 
    eval_job TEXT, 
    train_dispatch_id VARCHAR(255), 
    eval_dispatch_id VARCHAR(255), 
    CONSTRAINT pk_runs PRIMARY KEY (run_id), 
    CONSTRAINT fk_runs_experiment_experiments FOREIGN KEY(experiment) REFERENCES experiments (name) ON DELETE CASCADE
);

CREATE INDEX ix_runs_experiment_seq ON runs (experiment, seq);

CREATE INDEX ix_runs_experiment_status ON runs (experiment, status);

CREATE INDEX ix_runs_experiment_trial_index ON runs (experiment, trial_index);

CREATE TABLE job_events (
    id SERIAL NOT NULL, 
    run_id VARCHAR(255) NOT NULL, 
    job_type VARCHAR(32) NOT NULL, 
    kind VARCHAR(32) NOT NULL, 
    at FLOAT NOT NULL, 
    exit_code INTEGER, 
    payload TEXT, 
    CONSTRAINT pk_job_events PRIMARY KEY (id), 
    CONSTRAINT fk_job_events_run_id_runs FOREIGN KEY(run_id) REFERENCES runs (run_id) ON DELETE CASCADE
);

CREATE INDEX ix_job_events_run_id ON job_events (run_id);

CREATE TABLE scheduler_state (
    experiment VARCHAR(255) NOT NULL, 
    state TEXT NOT NULL, 
    updated_at FLOAT NOT NULL, 
    CONSTRAINT pk_scheduler_state PRIMARY KEY (experiment)
);

CREATE TABLE leases (
    experiment VARCHAR(255) NOT NULL, 
    owner VARCHAR(255) NOT NULL, 
    acquired_at FLOAT NOT NULL, 
    heartbeat_at FLOAT NOT NULL, 
    expires_at FLOAT NOT NULL, 
    CONSTRAINT pk_leases PRIMARY KEY (experiment)
);

INSERT INTO alembic_version (version_num) VALUES ('0001_initial') RETURNING alembic_version.version_num;

-- Running upgrade 0001_initial -> 0002_attempts

ALTER TABLE runs ADD COLUMN train_attempt INTEGER DEFAULT '1' NOT NULL;

ALTER TABLE runs ADD COLUMN eval_attempt INTEGER DEFAULT '1' NOT NULL;

ALTER TABLE experiments ADD COLUMN incarnation VARCHAR(64);

UPDATE alembic_version SET version_num='0002_attempts' WHERE alembic_version.version_num = '0001_initial';

-- Running upgrade 0002_attempts -> 0003_stopped

ALTER TABLE runs ADD COLUMN is_stopped BOOLEAN DEFAULT false NOT NULL;

UPDATE alembic_version SET version_num='0003_stopped' WHERE alembic_version.version_num = '0002_attempts';



INSERT INTO experiments (name, created_at, updated_at, spec, status, last_seq, incarnation) VALUES ('exp', 1795000000.0, 1795000009.5, '{"spec":{"name":"exp","imports":[],"store":null,"mirror":null,"dispatcher":{"type":"local"},"max_parallel":2,"monitoring_interval":1.0,"stale_after":3600.0,"retries":{"max_attempts":3,"on":["lost"]},"runs_dir":"runs","metric":"score","goal":"maximize","scheduler":{"type":"batched_synced","batch_size":3,"max_trials":6},"optimizer":{"seed":1,"type":"random"},"train":{"cmd":["python","train.py"],"env":{"MARKERS":"<not recorded>"}},"eval":{"cmd":["python","eval.py"],"env":{"MARKERS":"<not recorded>"}},"parameters":{"x":{"distribution":"uniform","max":1.0,"min":0.0}}},"scheduler_config":{"recipe_module":null,"train_entrypoint":"train","eval_entrypoint":"evaluate","max_trials":6,"gpus":0,"nodes":1,"timeout":null,"experiment_id":"exp","train_overrides":{},"eval_overrides":{},"train":{"cmd":["python","train.py"],"gpus":0,"nodes":1,"arg_style":"key=value","env":{"MARKERS":"<not recorded>"},"cwd":"/tmp/sweepwise-fixture","timeout":null,"record_env":[],"container":null},"eval":{"cmd":["python","eval.py"],"gpus":0,"nodes":1,"arg_style":"key=value","env":{"MARKERS":"<not recorded>"},"cwd":"/tmp/sweepwise-fixture","timeout":null,"record_env":[],"container":null},"batch_size":3,"stats_server_uri":null,"parameters":{"x":{"distribution":"uniform","max":1.0,"min":0.0}},"optimizer":{"type":"random","seed":1},"goal":"maximize","protein_config":null,"force_eval":false},"runs_root":"/tmp/sweepwise-fixture/runs","base_dir":"/tmp/sweepwise-fixture"}', 'running', 14, '69b0eb7ecb8e462ba6591401c50bd66b');
INSERT INTO runs (run_id, experiment, trial_index, seq, status, has_started_training, has_completed_training, has_started_eval, has_been_evaluated, has_failed, is_stale, is_cancelled, created_at, started_at, completed_at, updated_at, last_heartbeat_at, cost, runtime, error, tags, train_dispatch_id, eval_dispatch_id, eval_job, summary, train_job, train_attempt, eval_attempt, is_stopped) VALUES ('exp_trial_0001', 'exp', 1, 3, 'COMPLETED', TRUE, TRUE, TRUE, TRUE, FALSE, FALSE, FALSE, 1795000000.05, 1795000000.45, 1795000001.8, 1795000001.85, 1795000000.95, 1.0, 1.0, NULL, '[]', 'exp_trial_0001:train:878', 'exp_trial_0001:eval:878', '{"run_id":"exp_trial_0001","cmd":["python","eval.py"],"gpus":0,"nodes":1,"args":{},"overrides":{"x":0.5118216247},"type":"launch_eval","created_at":"2026-11-18T11:06:41.250000Z","metadata":{},"arg_style":"key=value","env":{"MARKERS":"<not recorded>"},"cwd":"/tmp/sweepwise-fixture","attempt":1,"timeout":null,"record_env":[],"container":null}', '{"observation/suggestion":{"x":0.5118216247},"train/exit_code":0,"train/runtime":0.75,"train/result":{"train_loss":0.4881783753},"eval/exit_code":0,"eval/runtime":0.25,"eval/result":{"score":5.118216247},"observation/score":5.118216247,"observation/cost":1.0,"adaptive/post_eval_processed":true,"adaptive/post_eval_processed_at":"2026-11-18T11:06:41.850000"}', '{"run_id":"exp_trial_0001","cmd":["python","train.py"],"gpus":0,"nodes":1,"args":{},"overrides":{"x":0.5118216247},"type":"launch_training","created_at":"2026-11-18T11:06:40.050000Z","metadata":{"adaptive/suggestion":{"x":0.5118216247}},"arg_style":"key=value","env":{"MARKERS":"<not recorded>"},"cwd":"/tmp/sweepwise-fixture","attempt":1,"timeout":null,"record_env":[],"container":null}', 1, 1, FALSE);
INSERT INTO runs (run_id, experiment, trial_index, seq, status, has_started_training, has_completed_training, has_started_eval, has_been_evaluated, has_failed, is_stale, is_cancelled, created_at, started_at, completed_at, updated_at, last_heartbeat_at, cost, runtime, error, tags, train_dispatch_id, eval_dispatch_id, eval_job, summary, train_job, train_attempt, eval_attempt, is_stopped) VALUES ('exp_trial_0002', 'exp', 2, 4, 'FAILED', TRUE, FALSE, FALSE, FALSE, TRUE, FALSE, FALSE, 1795000000.06, 1795000000.46, NULL, 1795000001.06, 1795000000.96, 0.0, 0.0, 'exit code 3; last output: training diverged: loss is nan', '[]', 'exp_trial_0002:train:878', NULL, NULL, '{"observation/suggestion":{"x":0.950463696326},"train/exit_code":3,"adaptive/attempts":[{"job":"train","attempt":1,"reason":"failed","error":"exit code 3; last output: training diverged: loss is nan","exit_code":3,"at":1795000000.86}]}', '{"run_id":"exp_trial_0002","cmd":["python","train.py"],"gpus":0,"nodes":1,"args":{},"overrides":{"x":0.950463696326},"type":"launch_training","created_at":"2026-11-18T11:06:40.060000Z","metadata":{"adaptive/suggestion":{"x":0.950463696326}},"arg_style":"key=value","env":{"MARKERS":"<not recorded>"},"cwd":"/tmp/sweepwise-fixture","attempt":1,"timeout":null,"record_env":[],"container":null}', 1, 1, FALSE);
INSERT INTO runs (run_id, experiment, trial_index, seq, status, has_started_training, has_completed_training, has_started_eval, has_been_evaluated, has_failed, is_stale, is_cancelled, created_at, started_at, completed_at, updated_at, last_heartbeat_at, cost, runtime, error, tags, train_dispatch_id, eval_dispatch_id, eval_job, summary, train_job, train_attempt, eval_attempt, is_stopped) VALUES ('exp_trial_0003', 'exp', 3, 5, 'CANCELLED', TRUE, FALSE, FALSE, FALSE, FALSE, FALSE, TRUE, 1795000000.07, 1795000000.47, NULL, 1795000001.07, 1795000000.97, 0.0, 0.0, NULL, '[]', 'exp_trial_0003:train:878', NULL, NULL, '{"observation/suggestion":{"x":0.448415143332}}', '{"run_id":"exp_trial_0003","cmd":["python","train.py"],"gpus":0,"nodes":1,"args":{},"overrides":{"x":0.448415143332},"type":"launch_training","created_at":"2026-11-18T11:06:40.070000Z","metadata":{"adaptive/suggestion":{"x":0.448415143332}},"arg_style":"key=value","env":{"MARKERS":"<not recorded>"},"cwd":"/tmp/sweepwise-fixture","attempt":1,"timeout":null,"record_env":[],"container":null}', 1, 1, FALSE);
INSERT INTO runs (run_id, experiment, trial_index, seq, status, has_started_training, has_completed_training, has_started_eval, has_been_evaluated, has_failed, is_stale, is_cancelled, created_at, started_at, completed_at, updated_at, last_heartbeat_at, cost, runtime, error, tags, train_dispatch_id, eval_dispatch_id, eval_job, summary, train_job, train_attempt, eval_attempt, is_stopped) VALUES ('exp_trial_0004', 'exp', 4, 6, 'IN TRAINING', TRUE, FALSE, FALSE, FALSE, FALSE, FALSE, FALSE, 1795000002.0, 1795000002.4, NULL, 1795000003.0, 1795000002.9, 0.0, 0.0, NULL, '[]', 'exp_trial_0004:train.2:878', NULL, NULL, '{"observation/suggestion":{"x":0.430881987544},"adaptive/attempts":[{"job":"train","attempt":1,"reason":"lost","error":"the job vanished","exit_code":null,"at":1795000002.3}]}', '{"run_id":"exp_trial_0004","cmd":["python","train.py"],"gpus":0,"nodes":1,"args":{},"overrides":{"x":0.430881987544},"type":"launch_training","created_at":"2026-11-18T11:06:42.000000Z","metadata":{"adaptive/suggestion":{"x":0.430881987544}},"arg_style":"key=value","env":{"MARKERS":"<not recorded>"},"cwd":"/tmp/sweepwise-fixture","attempt":2,"timeout":null,"record_env":[],"container":null}', 2, 1, FALSE);
INSERT INTO runs (run_id, experiment, trial_index, seq, status, has_started_training, has_completed_training, has_started_eval, has_been_evaluated, has_failed, is_stale, is_cancelled, created_at, started_at, completed_at, updated_at, last_heartbeat_at, cost, runtime, error, tags, train_dispatch_id, eval_dispatch_id, eval_job, summary, train_job, train_attempt, eval_attempt, is_stopped) VALUES ('exp_trial_0005', 'exp', 5, 7, 'PENDING', FALSE, FALSE, FALSE, FALSE, FALSE, FALSE, FALSE, 1795000002.1, NULL, NULL, 1795000003.1, NULL, 0.0, 0.0, NULL, '[]', NULL, NULL, NULL, '{"observation/suggestion":{"x":0.301234567891}}', '{"run_id":"exp_trial_0005","cmd":["python","train.py"],"gpus":0,"nodes":1,"args":{},"overrides":{"x":0.301234567891},"type":"launch_training","created_at":"2026-11-18T11:06:42.100000Z","metadata":{"adaptive/suggestion":{"x":0.301234567891}},"arg_style":"key=value","env":{"MARKERS":"<not recorded>"},"cwd":"/tmp/sweepwise-fixture","attempt":1,"timeout":null,"record_env":[],"container":null}', 1, 1, FALSE);
INSERT INTO job_events (run_id, job_type, kind, at, exit_code, payload) VALUES ('exp_trial_0001', 'launch_training', 'started', 1795000000.45, NULL, '{"dispatch_id":"exp_trial_0001:train:878","started_at":1795000000.45}');
INSERT INTO job_events (run_id, job_type, kind, at, exit_code, payload) VALUES ('exp_trial_0001', 'launch_training', 'finished', 1795000001.2, 0, '{"dispatch_id":"exp_trial_0001:train:878","started_at":1795000000.45,"result":{"train_loss":0.4881783753}}');
INSERT INTO job_events (run_id, job_type, kind, at, exit_code, payload) VALUES ('exp_trial_0001', 'launch_eval', 'started', 1795000001.55, NULL, '{"dispatch_id":"exp_trial_0001:eval:878","started_at":1795000001.55}');
INSERT INTO job_events (run_id, job_type, kind, at, exit_code, payload) VALUES ('exp_trial_0001', 'launch_eval', 'finished', 1795000001.8, 0, '{"dispatch_id":"exp_trial_0001:eval:878","started_at":1795000001.55,"result":{"score":5.118216247}}');
INSERT INTO job_events (run_id, job_type, kind, at, exit_code, payload) VALUES ('exp_trial_0002', 'launch_training', 'started', 1795000000.46, NULL, '{"dispatch_id":"exp_trial_0002:train:878","started_at":1795000000.46}');
INSERT INTO job_events (run_id, job_type, kind, at, exit_code, payload) VALUES ('exp_trial_0002', 'launch_training', 'finished', 1795000000.86, 3, '{"dispatch_id":"exp_trial_0002:train:878","started_at":1795000000.46,"error":"exit code 3; last output: training diverged: loss is nan"}');
INSERT INTO job_events (run_id, job_type, kind, at, exit_code, payload) VALUES ('exp_trial_0003', 'launch_training', 'started', 1795000000.47, NULL, '{"dispatch_id":"exp_trial_0003:train:878","started_at":1795000000.47}');
INSERT INTO job_events (run_id, job_type, kind, at, exit_code, payload) VALUES ('exp_trial_0004', 'launch_training', 'started', 1795000002.4, NULL, '{"dispatch_id":"exp_trial_0004:train.2:878","started_at":1795000002.4}');
INSERT INTO scheduler_state (experiment, state, updated_at) VALUES ('exp', '{"runs_in_training":["exp_trial_0004","exp_trial_0005"],"runs_in_eval":[],"runs_completed":["exp_trial_0001","exp_trial_0002","exp_trial_0003"]}', 1795000009.5);
INSERT INTO leases (experiment, owner, acquired_at, heartbeat_at, expires_at) VALUES ('exp', 'gone:pid=875:start=3292522:pidns=4026531836:boot=954f5a96-88e2-46e6-9cde-34fbafa416e5:747acc56', 1795000000.0, 1795000009.0, 1795000069.0);

COMMIT;
