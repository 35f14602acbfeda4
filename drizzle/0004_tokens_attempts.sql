CREATE TABLE `attempts` (
	`key` text PRIMARY KEY NOT NULL,
	`failures` integer NOT NULL,
	`blocked_until` integer NOT NULL,
	`last_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `attempts_last_at` ON `attempts` (`last_at`);--> statement-breakpoint
ALTER TABLE `links` ADD `token_hint` text DEFAULT '' NOT NULL;--> statement-breakpoint
-- The admin saw every link's full address until now; keep only its last characters as a hint.
UPDATE `links` SET `token_hint` = substr(`token`, -4);--> statement-breakpoint
ALTER TABLE `links` DROP COLUMN `token`;