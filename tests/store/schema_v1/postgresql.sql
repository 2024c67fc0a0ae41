CREATE TABLE durable_events (
	run_id VARCHAR(255) NOT NULL, 
	seq BIGINT NOT NULL, 
	type VARCHAR(32) NOT NULL, 
	position INTEGER, 
	name VARCHAR(255), 
	attempt INTEGER, 
	epoch BIGINT NOT NULL, 
	at FLOAT(53) NOT NULL, 
	outcome VARCHAR(16), 
	data BYTEA NOT NULL, 
	CONSTRAINT pk_durable_events PRIMARY KEY (run_id, seq)
);
CREATE UNIQUE INDEX uq_durable_events_outcome ON durable_events (run_id, position, outcome) WHERE outcome IS NOT NULL;
CREATE TABLE durable_meta (
	key VARCHAR(64) NOT NULL, 
	value VARCHAR(255) NOT NULL, 
	CONSTRAINT pk_durable_meta PRIMARY KEY (key)
);
CREATE TABLE durable_runs (
	id VARCHAR(255) NOT NULL, 
	workflow VARCHAR(255) NOT NULL, 
	queue VARCHAR(255) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	priority INTEGER NOT NULL, 
	input BYTEA NOT NULL, 
	output BYTEA, 
	error_type VARCHAR(255), 
	error_message TEXT, 
	parent_id VARCHAR(255), 
	due_at FLOAT(53), 
	wake_at FLOAT(53), 
	waiting_for VARCHAR(300), 
	deadline_at FLOAT(53), 
	timeout FLOAT(53), 
	lease_owner VARCHAR(255), 
	lease_epoch BIGINT NOT NULL, 
	lease_expires_at FLOAT(53), 
	last_seq BIGINT NOT NULL, 
	attempt INTEGER NOT NULL, 
	progress FLOAT, 
	stage VARCHAR(255), 
	steps_completed INTEGER NOT NULL, 
	stalls INTEGER NOT NULL, 
	trace_context BYTEA, 
	created_at FLOAT(53) NOT NULL, 
	updated_at FLOAT(53) NOT NULL, 
	finished_at FLOAT(53), 
	CONSTRAINT pk_durable_runs PRIMARY KEY (id)
);
CREATE INDEX ix_durable_runs_due ON durable_runs (queue, priority DESC, due_at) WHERE due_at IS NOT NULL;
CREATE INDEX ix_durable_runs_created_at ON durable_runs (created_at);
CREATE INDEX ix_durable_runs_status_workflow ON durable_runs (status, workflow);
CREATE INDEX ix_durable_runs_lease_owner ON durable_runs (lease_owner);
CREATE INDEX ix_durable_runs_parent_id ON durable_runs (parent_id);
CREATE TABLE durable_signals (
	id BIGSERIAL NOT NULL, 
	run_id VARCHAR(255) NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	payload BYTEA, 
	created_at FLOAT(53) NOT NULL, 
	consumed_seq BIGINT, 
	CONSTRAINT pk_durable_signals PRIMARY KEY (id)
);
CREATE INDEX ix_durable_signals_run_id_name ON durable_signals (run_id, name, consumed_seq);
