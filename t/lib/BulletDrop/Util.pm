package BulletDrop::Util;

# Small helpers shared by the stack and the test harness.

use strict;
use warnings;

use Carp qw(croak);
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use Exporter qw(import);
use Fcntl qw(O_WRONLY O_CREAT O_EXCL);
use File::Temp qw(tempfile);
use MIME::Base64 qw(encode_base64url);
use POSIX ();

our @EXPORT_OK = qw(top_dir run_cmd slurp spew spew_private random_text
                    as_user children_of);

# the project's top directory
sub top_dir { abs_path(dirname(__FILE__) . '/../../..') }

sub slurp {
    my ($file) = @_;
    open my $fh, '<', $file or croak "cannot read $file: $!";
    local $/;
    my $data = <$fh>;
    return $data // '';
}

sub spew {
    my ($file, $data, $mode) = @_;
    open my $fh, '>', $file or croak "cannot write $file: $!";
    print {$fh} $data;
    close $fh or croak "cannot write $file: $!";
    chmod $mode, $file if defined $mode;
    return;
}

# Writes a file only its owner may read (mode 0600 from its first byte),
# replacing the old one at once.
sub spew_private {
    my ($file, $data) = @_;
    my $tmp = "$file.new.$$";
    unlink $tmp;
    sysopen my $fh, $tmp, O_WRONLY | O_CREAT | O_EXCL, 0600
        or croak "cannot write $tmp: $!";
    print {$fh} $data;
    close $fh or croak "cannot write $tmp: $!";
    chmod 0600, $tmp;
    rename $tmp, $file or croak "cannot rename $tmp to $file: $!";
    return;
}

# $n characters of base64url from the kernel's random source
sub random_text {
    my ($n) = @_;
    open my $fh, '<:raw', '/dev/urandom' or croak "/dev/urandom: $!";
    my $want = int(($n * 3 + 3) / 4);
    my $bytes;
    my $got = read $fh, $bytes, $want;
    croak "/dev/urandom: short read" unless ($got // 0) == $want;
    return substr encode_base64url($bytes), 0, $n;
}

# the command, run as that system user when we are root
sub as_user {
    my ($user, @cmd) = @_;
    return [ @cmd ] if $> != 0 || $user eq 'root';
    return [ 'runuser', '-u', $user, '--', @cmd ];
}

# process ids whose parent is $ppid
sub children_of {
    my ($ppid) = @_;

    my @pids;
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $stat or next;
        my $s = <$fh> // next;
        my ($pid, $parent) = $s =~ /^(\d+) \(.*\) \S (\d+)/s or next;
        push @pids, $pid if $parent == $ppid;
    }

    return @pids;
}

# Runs a command (an array ref, no shell).
#   stdin   => text fed to it
#   capture => 1: return its standard output
#   quiet   => 1: do not echo its output
#   check   => 0: return (exit status, stdout, stderr) instead of dying
#   fail    => the message (or a sub making it) when it fails
sub run_cmd {
    my ($cmd, %o) = @_;

    my ($out_fh, $out_file) = tempfile(UNLINK => 1);
    my ($err_fh, $err_file) = tempfile(UNLINK => 1);
    my ($in_fh, $in_file) = tempfile(UNLINK => 1);
    print {$in_fh} $o{stdin} // '';
    close $in_fh;

    my $pid = fork // croak "fork: $!";

    if ($pid == 0) {
        open STDIN, '<', $in_file or POSIX::_exit(126);
        open STDOUT, '>&', $out_fh or POSIX::_exit(126);
        open STDERR, '>&', $err_fh or POSIX::_exit(126);
        { no warnings 'exec'; exec { $cmd->[0] } @$cmd; }
        print STDERR "cannot run $cmd->[0]: $!\n";
        POSIX::_exit(127);
    }

    waitpid $pid, 0;
    my $status = $?;

    my $out = slurp($out_file);
    my $err = slurp($err_file);
    # now, not at exit: a caller may exec (the unit tests do)
    unlink $out_file, $err_file, $in_file;

    return ($status, $out, $err) if defined $o{check} && !$o{check};

    if ($status != 0) {
        my $msg = ref $o{fail} ? $o{fail}->() : $o{fail};
        $msg //= "command failed: @$cmd";
        my $text = join '', grep { length } $err, $out;
        $text =~ s/\s+\z//;
        croak $msg . ($text ne '' ? "\n$text" : '') . "\n";
    }

    print $out, $err unless $o{quiet} || $o{capture};

    return $o{capture} ? $out : $status;
}

1;
