package BulletDrop::Migrate;

# Applies sql/NNN_name.sql files in order, each once, each in a
# transaction together with its row in schema_migrations.  The ledger is
# itself created by migration 001, inside that first transaction.
#
# A migration that was applied and then edited is refused (its checksum
# differs): write a new migration instead.  Files must not hold their own
# BEGIN/COMMIT, nor statements that cannot run in a transaction.

use strict;
use warnings;

use Carp qw(croak);
use Digest::SHA qw(sha256_hex);
use File::Basename qw(basename);

use BulletDrop::Util qw(run_cmd slurp);

sub files {
    my ($dir) = @_;

    my @files;
    for my $path (glob "$dir/*.sql") {
        my ($version, $name) = basename($path) =~ /^(\d+)_([\w-]+)\.sql$/
            or croak "migration file not named NNN_name.sql: $path";
        push @files, { version => 0 + $version, name => $name,
                       path => $path, checksum => sha256_hex(slurp($path)) };
    }

    @files = sort { $a->{version} <=> $b->{version} } @files;

    for my $i (1 .. $#files) {
        croak "two migrations numbered $files[$i]{version}"
            if $files[$i]{version} == $files[$i - 1]{version};
    }

    return @files;
}

sub _psql {
    my ($conninfo, %o) = @_;
    return run_cmd(['psql', '-X', '-q', '-A', '-t', '-F', "\t",
                    '-v', 'ON_ERROR_STOP=1', '-d', $conninfo,
                    $o{sql} ? ('-c', $o{sql}) : ('-f', '-')],
                   stdin => $o{stdin}, capture => 1, fail => $o{fail});
}

sub applied {
    my ($conninfo) = @_;

    my $exists = _psql($conninfo,
                       sql => "SELECT to_regclass('schema_migrations') "
                              . "IS NOT NULL",
                       fail => 'cannot read the migration ledger');
    return {} unless $exists =~ /^t/;

    my %applied;
    for my $line (split /\n/, _psql($conninfo,
            sql => 'SELECT version, checksum FROM schema_migrations',
            fail => 'cannot read the migration ledger'))
    {
        my ($version, $checksum) = split /\t/, $line;
        $applied{$version} = $checksum;
    }

    return \%applied;
}

# Returns the migrations it applied, as "NNN_name".
sub apply {
    my (%o) = @_;

    my $conninfo = $o{conninfo} or croak 'conninfo is required';
    my $dir = $o{dir} or croak 'dir is required';
    my $log = $o{log} // sub { print "$_[0]\n" };

    my @files = files($dir);
    my $applied = applied($conninfo);
    my @done;

    for my $m (@files) {
        my $id = sprintf '%03d_%s', $m->{version}, $m->{name};

        if (exists $applied->{$m->{version}}) {
            croak "migration $id was changed after it was applied; "
                . "add a new migration instead"
                if $applied->{$m->{version}} ne $m->{checksum};
            next;
        }

        my $script = join "\n",
            '\set ON_ERROR_STOP on',
            'BEGIN;',
            "\\ir $m->{path}",
            "INSERT INTO schema_migrations (version, name, checksum) "
                . "VALUES ($m->{version}, '$m->{name}', '$m->{checksum}');",
            'COMMIT;', '';

        _psql($conninfo, stdin => $script,
              fail => "migration $id failed; nothing of it was applied");

        $log->("applied migration $id");
        push @done, $id;
    }

    return @done;
}

1;
