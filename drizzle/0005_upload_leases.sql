ALTER TABLE `uploads` ADD `lease_owner` text;--> statement-breakpoint
ALTER TABLE `uploads` ADD `lease_expires_at` integer;