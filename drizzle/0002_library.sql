CREATE TABLE `activity` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`at` integer NOT NULL,
	`actor` text NOT NULL,
	`action` text NOT NULL,
	`target` text,
	`details` text,
	`client_address` text
);
--> statement-breakpoint
CREATE INDEX `activity_at` ON `activity` (`at`);--> statement-breakpoint
CREATE INDEX `activity_action_at` ON `activity` (`action`,`at`);--> statement-breakpoint
DROP INDEX `files_folder_name`;--> statement-breakpoint
ALTER TABLE `files` ADD `deleted_at` integer;--> statement-breakpoint
CREATE UNIQUE INDEX `files_folder_name_live` ON `files` (`folder_id`,`name`) WHERE deleted_at is null;--> statement-breakpoint
CREATE INDEX `files_folder_size` ON `files` (`folder_id`,`size_bytes`);--> statement-breakpoint
CREATE INDEX `files_deleted` ON `files` (`deleted_at`);--> statement-breakpoint
DROP INDEX `folders_parent_name`;--> statement-breakpoint
ALTER TABLE `folders` ADD `deleted_at` integer;--> statement-breakpoint
CREATE UNIQUE INDEX `folders_parent_name_live` ON `folders` (`parent_id`,`name`) WHERE deleted_at is null;