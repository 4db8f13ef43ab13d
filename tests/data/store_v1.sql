PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE automl_meta (
	"key" VARCHAR(64) NOT NULL, 
	value VARCHAR(256) NOT NULL, 
	PRIMARY KEY ("key")
);
INSERT INTO automl_meta VALUES('schema_version','1');
CREATE TABLE automl_experiments (
	id INTEGER NOT NULL, 
	name VARCHAR(100) NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	seed INTEGER NOT NULL, 
	config JSON NOT NULL, 
	config_hash VARCHAR(64) NOT NULL, 
	objectives JSON NOT NULL, 
	plugins JSON NOT NULL, 
	automl_version VARCHAR(40) NOT NULL, 
	artifacts_dir TEXT NOT NULL, 
	created_at DATETIME NOT NULL, 
	finished_at DATETIME, 
	error TEXT, 
	PRIMARY KEY (id)
);
INSERT INTO automl_experiments VALUES(1,'old','running',0,'{"name": "old"}','h','[{"metric": "accuracy", "mode": "max", "key": "val/accuracy"}]','{}','0.1.0','/tmp/runs','2026-11-29 07:09:18.085427',NULL,NULL);
CREATE TABLE automl_leases (
	name VARCHAR(100) NOT NULL, 
	token VARCHAR(64) NOT NULL, 
	host VARCHAR(255) NOT NULL, 
	pid INTEGER NOT NULL, 
	started_at DATETIME NOT NULL, 
	heartbeat_at DATETIME NOT NULL, 
	PRIMARY KEY (name)
);
CREATE TABLE automl_trials (
	id INTEGER NOT NULL, 
	experiment_id INTEGER NOT NULL, 
	number INTEGER NOT NULL, 
	tune_trial_id VARCHAR(64) NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	params JSON NOT NULL, 
	metrics JSON NOT NULL, 
	history JSON NOT NULL, 
	seed INTEGER, 
	node VARCHAR(255), 
	node_id VARCHAR(64), 
	device VARCHAR(32), 
	started_at DATETIME NOT NULL, 
	finished_at DATETIME, 
	duration_s FLOAT, 
	checkpoint TEXT, 
	error TEXT, 
	PRIMARY KEY (id), 
	UNIQUE (experiment_id, number), 
	FOREIGN KEY(experiment_id) REFERENCES automl_experiments (id) ON DELETE CASCADE
);
INSERT INTO automl_trials VALUES(1,1,0,'t0','completed','{"architecture": "mlp"}','{"val/accuracy": 0.9, "test/accuracy": 0.88, "model/params": 100.0}','[{"epoch": 1}]',1,'n',NULL,'cpu','2026-11-29 07:09:18.089158','2026-11-29 07:09:18.090889',0.0017309999999999998998,'/c0',NULL);
CREATE TABLE automl_ensembles (
	id INTEGER NOT NULL, 
	experiment_id INTEGER NOT NULL, 
	created_at DATETIME NOT NULL, 
	ensembler VARCHAR(100) NOT NULL, 
	settings JSON NOT NULL, 
	metric VARCHAR(100) NOT NULL, 
	members JSON NOT NULL, 
	weights JSON NOT NULL, 
	best_single INTEGER NOT NULL, 
	scores JSON NOT NULL, 
	note TEXT, 
	PRIMARY KEY (id), 
	FOREIGN KEY(experiment_id) REFERENCES automl_experiments (id) ON DELETE CASCADE
);
INSERT INTO automl_ensembles VALUES(1,1,'2026-11-29 07:09:18.091771','greedy','{}','accuracy','[0]','[1.0]',0,'{"ensemble": {"test/accuracy": 0.88}, "best_single": {"test/accuracy": 0.88}}',NULL);
CREATE UNIQUE INDEX ix_automl_experiments_name ON automl_experiments (name);
CREATE INDEX ix_automl_trials_experiment_id ON automl_trials (experiment_id);
CREATE INDEX ix_automl_ensembles_experiment_id ON automl_ensembles (experiment_id);
COMMIT;
