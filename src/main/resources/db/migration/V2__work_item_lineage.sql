-- Lineage of a page or archive member (issue 10): vlm_work_item.uri is the file as listed (source_uri),
-- member the path inside the container (nested levels joined by '!/', '' for none), page the 1-based
-- page or frame (NULL for a single image). Existing rows are whole files: '' and NULL.
ALTER TABLE vlm_work_item ADD COLUMN member TEXT NOT NULL DEFAULT '';
ALTER TABLE vlm_work_item ADD COLUMN page   INT;
