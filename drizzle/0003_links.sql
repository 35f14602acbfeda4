CREATE TABLE `links` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`token` text NOT NULL,
	`token_hash` text NOT NULL,
	`folder_id` integer NOT NULL,
	`label` text NOT NULL,
	`password_hash` text,
	`expires_at` integer,
	`max_file_bytes` integer,
	`max_total_bytes` integer,
	`max_files` integer,
	`allowed_types` text,
	`allow_download` integer DEFAULT false NOT NULL,
	`disabled` integer DEFAULT false NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`folder_id`) REFERENCES `folders`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `links_token_hash` ON `links` (`token_hash`);--> statement-breakpoint
CREATE INDEX `links_folder` ON `links` (`folder_id`);--> statement-breakpoint
ALTER TABLE `folders` ADD `password_hash` text;--> statement-breakpoint
CREATE INDEX `uploads_owner_state` ON `uploads` (`owner`,`state`);