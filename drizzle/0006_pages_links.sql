ALTER TABLE `files` ADD `sort_name` text;--> statement-breakpoint
ALTER TABLE `files` ADD `link_id` integer;--> statement-breakpoint
CREATE INDEX `files_folder_sort_name` ON `files` (`folder_id`,`sort_name`);--> statement-breakpoint
CREATE INDEX `files_link` ON `files` (`link_id`);--> statement-breakpoint
ALTER TABLE `folders` ADD `sort_name` text;--> statement-breakpoint
ALTER TABLE `links` ADD `show_whole_folder` integer DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE `links` ADD `entered_limits` text;--> statement-breakpoint
UPDATE `files` SET `link_id` = (SELECT CAST(substr(`owner`, 6) AS integer) FROM `uploads` WHERE `uploads`.`id` = `files`.`upload_id` AND `uploads`.`owner` LIKE 'link:%');
