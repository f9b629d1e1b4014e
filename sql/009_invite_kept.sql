-- A used invite stays: DELETE /api/admin/invites/ID revokes unused ones
-- only, and the list says who came in by each.  The statement checks that
-- no user names the invite, but a registration that commits while the
-- DELETE waits for its lock is not seen by that check, and ON DELETE SET
-- NULL then erased who used it.  The database now refuses such a delete
-- (23503), which the module answers as it answers a used invite: 404.
ALTER TABLE users DROP CONSTRAINT users_invite_id_fkey;
ALTER TABLE users ADD CONSTRAINT users_invite_id_fkey
    FOREIGN KEY (invite_id) REFERENCES invites (id) ON DELETE RESTRICT;
