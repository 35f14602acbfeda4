ALTER TABLE `uploads` ADD `length_deferred` integer DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE `uploads` ADD `concat` text;--> statement-breakpoint
ALTER TABLE `uploads` ADD `part_ids` text;--> statement-breakpoint
ALTER TABLE `uploads` ADD `metadata` text;