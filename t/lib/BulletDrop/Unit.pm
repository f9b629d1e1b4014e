package BulletDrop::Unit;

# Builds a pure C unit test (t/unit/NAME.c with the src/ files it tests),
# with the address and undefined-behaviour sanitizers, and replaces the
# running .t with it: the program prints its own TAP.
#
#   run_unit('route', 'src/bd_route.c');
#   run_unit('password', [ 'src/bd_password.c', 'src/bd_text.c' ],
#            libs => [ '-lcrypto' ]);

use strict;
use warnings;

use Exporter qw(import);
use File::Path qw(make_path);

use BulletDrop::Util qw(top_dir run_cmd);

our @EXPORT_OK = qw(run_unit);

sub run_unit {
    my ($name, @args) = @_;

    # a list of sources, or an array ref of them followed by options
    my ($sources, %o) = ref $args[0] ? @args : ([ @args ]);

    my $top = top_dir();
    my $out = "$top/build/unit";
    make_path($out);

    # built under a name of its own, then renamed: `make test` and
    # `make test-asan` (or two people) may build the same test at once
    my $tmp = "$out/$name.$$.tmp";
    my ($status, $stdout, $stderr) = run_cmd(
        [ $ENV{CC} // 'cc', '-std=c99', '-Wall', '-Wextra', '-Werror',
          '-g', '-O1', '-fno-omit-frame-pointer',
          '-fsanitize=address,undefined', '-fno-sanitize-recover=all',
          "-I$top/src", "-I$top/t/unit", '-o', $tmp,
          "$top/t/unit/$name.c", (map { "$top/$_" } @$sources),
          @{ $o{libs} // [] } ],
        check => 0);

    if ($status != 0) {
        unlink $tmp;
        print "1..1\nnot ok 1 - t/unit/$name.c compiles\n";
        print map { "# $_\n" } split /\n/, $stderr . $stdout;
        exit 1;
    }
    rename $tmp, "$out/$name" or die "cannot rename $tmp: $!";

    exec "$out/$name" or die "cannot run $out/$name: $!";
}

1;
