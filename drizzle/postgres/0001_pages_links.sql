ALTER TABLE "files" ADD COLUMN "sort_name" text;--> statement-breakpoint
ALTER TABLE "files" ADD COLUMN "link_id" integer;--> statement-breakpoint
ALTER TABLE "folders" ADD COLUMN "sort_name" text;--> statement-breakpoint
ALTER TABLE "links" ADD COLUMN "show_whole_folder" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "links" ADD COLUMN "entered_limits" text;--> statement-breakpoint
CREATE INDEX "files_folder_sort_name" ON "files" USING btree ("folder_id","sort_name");--> statement-breakpoint
CREATE INDEX "files_link" ON "files" USING btree ("link_id");--> statement-breakpoint
UPDATE "files" SET "link_id" = CAST(substr(u."owner", 6) AS integer) FROM "uploads" u WHERE u."id" = "files"."upload_id" AND u."owner" LIKE 'link:%';
