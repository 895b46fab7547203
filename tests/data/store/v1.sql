-- A database as version 1 of aggregator left it (store.py of the first release), with
-- one feed and two items; tests/test_topics.py migrates a file made from it.
BEGIN TRANSACTION;
CREATE TABLE delivered (
	digest TEXT NOT NULL, 
	recipient TEXT NOT NULL, 
	story_id INTEGER NOT NULL, 
	edition_id INTEGER NOT NULL, 
	PRIMARY KEY (digest, recipient, story_id), 
	FOREIGN KEY(story_id) REFERENCES stories (id), 
	FOREIGN KEY(edition_id) REFERENCES editions (id)
);
CREATE TABLE editions (
	id INTEGER NOT NULL, 
	digest TEXT NOT NULL, 
	recipient TEXT NOT NULL, 
	edition_key TEXT NOT NULL, 
	cutoff DATETIME NOT NULL, 
	built_at DATETIME NOT NULL, 
	message_name TEXT, 
	story_count INTEGER DEFAULT '0' NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_editions_key UNIQUE (digest, recipient, edition_key)
);
CREATE TABLE feeds (
	id INTEGER NOT NULL, 
	url TEXT NOT NULL, 
	name TEXT NOT NULL, 
	added_at DATETIME NOT NULL, 
	title TEXT, 
	etag TEXT, 
	last_modified TEXT, 
	body_hash TEXT, 
	ttl_minutes INTEGER, 
	last_poll_at DATETIME, 
	last_success_at DATETIME, 
	last_new_item_at DATETIME, 
	last_outcome TEXT, 
	last_status INTEGER, 
	last_error TEXT, 
	error_streak INTEGER DEFAULT '0' NOT NULL, 
	next_due_at DATETIME, 
	moved_to TEXT, 
	gone_at DATETIME, 
	PRIMARY KEY (id), 
	UNIQUE (url)
);
INSERT INTO "feeds" VALUES(1,'https://world.example/rss.xml','World Desk','2026-11-20 06:00:00.000000',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,0,NULL,NULL,NULL);
CREATE TABLE items (
	id INTEGER NOT NULL, 
	feed_id INTEGER NOT NULL, 
	"key" TEXT NOT NULL, 
	guid TEXT, 
	link TEXT, 
	title TEXT NOT NULL, 
	title_generated BOOLEAN DEFAULT 0 NOT NULL, 
	lead TEXT DEFAULT '' NOT NULL, 
	author TEXT, 
	image_url TEXT, 
	categories TEXT DEFAULT '[]' NOT NULL, 
	published_at DATETIME, 
	first_seen_at DATETIME NOT NULL, 
	changed_at DATETIME NOT NULL, 
	content_hash TEXT NOT NULL, 
	topic TEXT DEFAULT '' NOT NULL, 
	story_id INTEGER NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_items_feed_key UNIQUE (feed_id, "key"), 
	FOREIGN KEY(feed_id) REFERENCES feeds (id) ON DELETE CASCADE, 
	FOREIGN KEY(story_id) REFERENCES stories (id)
);
INSERT INTO "items" VALUES(1,1,'a','a','https://world.example/a','Ukraine and Russia agree prisoner exchange',0,'Officials said 200 prisoners were exchanged.',NULL,NULL,'[]','2026-11-20 06:00:00.000000','2026-11-20 06:00:00.000000','2026-11-20 06:00:00.000000','h1','world',1);
INSERT INTO "items" VALUES(2,1,'b','b','https://world.example/b','Sponsored: the best travel deals this winter',0,'Partner content.',NULL,NULL,'[]','2026-11-20 06:00:00.000000','2026-11-20 06:00:00.000000','2026-11-20 06:00:00.000000','h2','more',2);
CREATE TABLE polls (
	id INTEGER NOT NULL, 
	feed_id INTEGER NOT NULL, 
	at DATETIME NOT NULL, 
	outcome TEXT NOT NULL, 
	status INTEGER, 
	error TEXT, 
	new_items INTEGER DEFAULT '0' NOT NULL, 
	updated_items INTEGER DEFAULT '0' NOT NULL, 
	elapsed_ms INTEGER DEFAULT '0' NOT NULL, 
	next_due_at DATETIME, 
	PRIMARY KEY (id), 
	FOREIGN KEY(feed_id) REFERENCES feeds (id) ON DELETE CASCADE
);
CREATE TABLE schema_version (
	version INTEGER NOT NULL
);
INSERT INTO "schema_version" VALUES(1);
CREATE TABLE stories (
	id INTEGER NOT NULL, 
	first_seen_at DATETIME NOT NULL, 
	link TEXT, 
	PRIMARY KEY (id)
);
INSERT INTO "stories" VALUES(1,'2026-11-20 06:00:00.000000','https://world.example/a');
INSERT INTO "stories" VALUES(2,'2026-11-20 06:00:00.000000','https://world.example/b');
CREATE INDEX ix_stories_link ON stories (link);
CREATE INDEX ix_polls_feed_at ON polls (feed_id, at);
CREATE INDEX ix_items_first_seen ON items (first_seen_at);
CREATE INDEX ix_items_story ON items (story_id);
CREATE INDEX ix_items_feed_link ON items (feed_id, link);
COMMIT;
