#!/usr/bin/perl
# Migrations: applied in order, each once, each all-or-nothing, recorded
# in schema_migrations, by bin/bulletdrop-migrate (the harness loads it as
# BulletDrop::Migrate); two runs at once apply each migration once; an
# applied migration that was edited is refused.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Copy qw(copy);
use File::Temp qw(tempdir);

use BulletDrop::Migrate;
use BulletDrop::Test;
use BulletDrop::Util qw(top_dir spew);

my $t = BulletDrop::Test->new;    # migrated with the project's sql/
my $pg = $t->pg;

sub versions {
    my (%o) = @_;
    return [ map { $_->[0] } @{ $pg->psql(
        'SELECT version FROM schema_migrations ORDER BY version', %o) } ];
}

my @project = BulletDrop::Migrate::files(top_dir() . '/sql');

subtest "the project's migrations are applied and recorded" => sub {
    is_deeply(versions(), [ map { $_->{version} } @project ],
              'every sql/ file has its row');

    my $rows = $pg->psql('SELECT checksum FROM schema_migrations '
                         . 'WHERE version = 1');
    is($rows->[0][0], $project[0]{checksum}, 'with the checksum of its file');

    my @again = BulletDrop::Migrate::apply(
        conninfo => $pg->conninfo, dir => top_dir() . '/sql',
        log => sub {});
    is(scalar @again, 0, 'a second run applies nothing');
};

subtest 'two bulletdrop-migrate at once: one applies, the other applies '
        . 'nothing' => sub {
    $pg->create_app_db(name => 'twice');
    my $twice = $pg->conninfo(dbname => 'twice', user => 'twice');

    # both started before either is read: the second waits for the
    # first's lock, or finds its work done
    my @runs = map {
        open my $out, '-|', top_dir() . '/bin/bulletdrop-migrate', $twice
            or die "cannot run bin/bulletdrop-migrate: $!";
        $out;
    } 1, 2;
    my @said = map {
        my $out = $_;
        my $text = do { local $/; <$out> } // '';
        close $out;
        { status => $?, text => $text };
    } @runs;

    is_deeply([ map { $_->{status} } @said ], [0, 0], 'both succeed');
    my @applied = map { scalar(() = $_->{text} =~ /^applied migration/mg) }
                  @said;
    is_deeply([ sort { $a <=> $b } @applied ], [0, scalar @project],
              'one applied every migration, the other none')
        or diag join "\n", map { $_->{text} } @said;
    like(join('', map { $_->{text} } @said),
         qr/nothing to apply; the database is at \Q@{[
            BulletDrop::Migrate::id($project[-1]) ]}\E\n/,
         'and it said so');
    is_deeply(versions(conninfo => $twice),
              [ map { $_->{version} } @project ], 'each recorded once');
};

# a scratch database and migration directory for the rest
$pg->create_app_db(name => 'scratch');
my $conninfo = $pg->conninfo(dbname => 'scratch', user => 'scratch');
my $dir = tempdir(CLEANUP => 1);
copy("$project[0]{path}", "$dir/001_schema_migrations.sql") or die $!;

sub migrate {
    my @applied;
    my $ok = eval {
        @applied = BulletDrop::Migrate::apply(conninfo => $conninfo,
                                              dir => $dir, log => sub {});
        1;
    };
    return ($ok, $ok ? \@applied : $@);
}

subtest 'new migrations run in numeric order' => sub {
    spew("$dir/010_later.sql",
         "INSERT INTO things (name) VALUES ('from 010');\n");
    spew("$dir/002_things.sql",
         "CREATE TABLE things (id serial PRIMARY KEY, name text);\n");

    my ($ok, $applied) = migrate();
    ok($ok, 'applied') or diag $applied;
    is_deeply($applied, [qw(001_schema_migrations 002_things 010_later)],
              '001, 002, then 010');
    is_deeply([ map { $_->[0] } @{ $pg->psql('SELECT name FROM things',
                                              conninfo => $conninfo) } ],
              ['from 010'], 'each saw what the ones before it made');
};

subtest 'a failing migration leaves nothing of itself' => sub {
    spew("$dir/011_broken.sql", join "\n",
         "CREATE TABLE half_done (id int);",
         "INSERT INTO things (name) VALUES ('from 011');",
         "SELECT no_such_function();", '');

    my ($ok, $err) = migrate();
    ok(!$ok, 'the run fails');
    like($err, qr/migration 011_broken failed; nothing of it was applied/,
         'naming the migration');
    like($err, qr/no_such_function/, "with PostgreSQL's reason");

    my $table = $pg->psql("SELECT to_regclass('half_done') IS NULL",
                          conninfo => $conninfo);
    is($table->[0][0], 't', 'its table is not there');
    my $rows = $pg->psql("SELECT count(*) FROM things WHERE name = "
                         . "'from 011'", conninfo => $conninfo);
    is($rows->[0][0], 0, 'nor its row');
    is_deeply(versions(conninfo => $conninfo), [1, 2, 10],
              'nor its ledger entry');

    spew("$dir/011_broken.sql", "CREATE TABLE half_done (id int);\n");
    ($ok, my $applied) = migrate();
    ok($ok, 'once fixed, it applies') or diag $applied;
    is_deeply($applied, ['011_broken'], 'alone');
};

subtest 'an applied migration that was edited is refused' => sub {
    spew("$dir/002_things.sql",
         "CREATE TABLE things (id bigserial PRIMARY KEY, name text);\n");
    spew("$dir/012_next.sql", "CREATE TABLE next_one (id int);\n");

    my ($ok, $err) = migrate();
    ok(!$ok, 'the run fails');
    like($err, qr/migration 002_things was changed after it was applied/,
         'naming the edited migration');
    my $table = $pg->psql("SELECT to_regclass('next_one') IS NULL",
                          conninfo => $conninfo);
    is($table->[0][0], 't', 'and applies nothing after it');
};

subtest 'badly named or duplicate files are refused' => sub {
    my $bad = tempdir(CLEANUP => 1);
    spew("$bad/1-things.sql", "SELECT 1;\n");
    ok(!eval { BulletDrop::Migrate::files($bad); 1 }, 'a bad name');
    like($@, qr/not named NNN_name\.sql/, 'says how to name it');

    my $dup = tempdir(CLEANUP => 1);
    spew("$dup/002_a.sql", "SELECT 1;\n");
    spew("$dup/02_b.sql", "SELECT 1;\n");
    ok(!eval { BulletDrop::Migrate::files($dup); 1 }, 'two with one number');
    like($@, qr/two migrations numbered 2/, 'says which');
};

done_testing;
