-- matviews.swap and search_path (SPEC §4): a definition written under search_path swap_s1, where
-- swap_s1.swap_sp_t and public.swap_sp_t both exist with different data, is rebuilt from
-- swap_s1.swap_sp_t whatever the caller's search_path: the same data as a regular refresh. A
-- redefinition is read under the caller's search_path, which becomes the definition's. A view
-- that matviews does not manage is rebuilt from its stored query, and functions it calls still
-- find their objects.
-- Uses swaptest_summary from swap.sql.

SET client_min_messages = warning;

CREATE SCHEMA swap_s1;
CREATE TABLE swap_s1.swap_sp_t (v text);
INSERT INTO swap_s1.swap_sp_t VALUES ('from swap_s1');
CREATE TABLE public.swap_sp_t (v text);
INSERT INTO public.swap_sp_t VALUES ('from public');

SET search_path = swap_s1, public;
SELECT r->>'status' AS status, r->>'view' AS view
FROM matviews.create('public.swap_sp_mv', 'SELECT v FROM swap_sp_t') r;
SELECT search_path FROM matviews.definitions WHERE view_name = 'swap_sp_mv';
RESET search_path;

-- A regular refresh reads swap_s1.swap_sp_t, under any search_path.
SELECT r->>'status' AS status FROM matviews.refresh('swap_sp_mv', strategy => 'regular') r;
SELECT v AS after_refresh FROM swap_sp_mv;

-- So does a swap, whatever the caller's search_path.
SELECT r->>'status' AS status FROM matviews.swap('swap_sp_mv') r;
SELECT v AS swap_default_path FROM swap_sp_mv;
SET search_path = public;
SELECT r->>'status' AS status FROM matviews.swap('swap_sp_mv') r;
SELECT v AS swap_public FROM swap_sp_mv;
SET search_path = '';
SELECT r->>'status' AS status FROM matviews.swap('public.swap_sp_mv') r;
SELECT v AS swap_empty_path FROM public.swap_sp_mv;
SET search_path = swap_s1, public;
SELECT r->>'status' AS status FROM matviews.swap('public.swap_sp_mv') r;
SELECT v AS swap_s1_path FROM public.swap_sp_mv;
RESET search_path;
SELECT r->>'status' AS status FROM matviews.refresh('swap_sp_mv', strategy => 'swap') r;
SELECT v AS refresh_swap FROM swap_sp_mv;

-- The caller's search_path does not leak into the definition either.
SELECT search_path FROM matviews.definitions WHERE view_name = 'swap_sp_mv';

-- A redefinition is read under the caller's search_path, which is stored with it.
SET search_path = public;
SELECT r->>'status' AS status FROM matviews.swap('swap_sp_mv', sql => 'SELECT v || ''!'' AS v FROM swap_sp_t') r;
SELECT v AS redefined FROM swap_sp_mv;
SELECT search_path FROM matviews.definitions WHERE view_name = 'swap_sp_mv';
SET search_path = swap_s1, public;
SELECT r->>'status' AS status FROM matviews.swap('public.swap_sp_mv') r;
SELECT v AS rebuilt FROM public.swap_sp_mv;
RESET search_path;

-- A view matviews does not manage, built under swap_s1, calling a function whose body names a
-- table without a schema: the swap gives what REFRESH gives.
CREATE FUNCTION swap_s1.swap_sp_first() RETURNS text LANGUAGE sql STABLE
    AS 'SELECT min(v) FROM swap_sp_t';
SET search_path = swap_s1, public;
CREATE MATERIALIZED VIEW public.swap_sp_plain AS SELECT v, swap_sp_first() AS first FROM swap_sp_t;
REFRESH MATERIALIZED VIEW public.swap_sp_plain;
SELECT v, first FROM public.swap_sp_plain;
SELECT swaptest_summary(r) AS swap FROM matviews.swap('public.swap_sp_plain') r;
SELECT v, first FROM public.swap_sp_plain;
RESET search_path;

-- Clean up.
DROP MATERIALIZED VIEW swap_sp_plain;
SELECT r->>'status' AS status FROM matviews.delete('swap_sp_mv') r;
DROP FUNCTION swap_s1.swap_sp_first();
DROP TABLE swap_s1.swap_sp_t, public.swap_sp_t;
DROP SCHEMA swap_s1;
