package BulletDrop::Stack;

# The local stack behind `make run`, `make stop`, `make migrate`,
# `make fsck`, `make backup` and `make restore`: a PostgreSQL cluster and nginx with the module, both living
# in the run dir (BULLETDROP_RUN_DIR, default .run/), nginx on
# 127.0.0.1:BULLETDROP_PORT (default 8080).  The test suite drives the
# same code.
#
# The run dir also keeps the uploaded files (uploads/, which
# nginx-conf/dev.conf names as bulletdrop_upload_dir) and what the stack
# made for itself once: jwt.secret (the key nginx signs tokens with),
# admin.json (the admin account and an API key, made through the API on
# the first start) and bulletdrop.sxcu (a ShareX config with that key).

use strict;
use warnings;

use Carp qw(croak);
use File::Path qw(make_path);
use JSON::PP ();
use File::Spec;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);

use BulletDrop::HTTP;
use BulletDrop::Migrate;
use BulletDrop::Nginx;
use BulletDrop::Pg;
use BulletDrop::Util qw(top_dir slurp spew_private random_text);

sub new {
    my ($class, %o) = @_;

    my $top = top_dir();
    my $dir = $o{dir} // $ENV{BULLETDROP_RUN_DIR} // "$top/.run";
    $dir = File::Spec->rel2abs($dir, $top);
    my $port = $o{port} // $ENV{BULLETDROP_PORT} // 8080;

    croak "BULLETDROP_PORT must be a port number, not '$port'"
        unless $port =~ /^\d+$/ && $port > 0 && $port < 65536;

    make_path($dir);
    chmod 0755, $dir;

    return bless {
        top   => $top,
        dir   => $dir,
        port  => $port,
        log   => $o{log} // sub { print "$_[0]\n" },
        pg    => BulletDrop::Pg->new(dir => "$dir/pg", durable => 1),
        nginx => BulletDrop::Nginx->new(prefix => "$dir/nginx",
                                        port => $port),
    }, $class;
}

sub dir   { $_[0]{dir} }
sub port  { $_[0]{port} }
sub pg    { $_[0]{pg} }
sub nginx { $_[0]{nginx} }
sub url   { "http://127.0.0.1:$_[0]{port}" }

sub jwt_secret_file { "$_[0]{dir}/jwt.secret" }
sub admin_file      { "$_[0]{dir}/admin.json" }
sub upload_dir      { "$_[0]{dir}/uploads" }
sub sharex_file     { "$_[0]{dir}/bulletdrop.sxcu" }

# the nginx master of a stack started earlier, if it is still there
sub running_nginx {
    my ($self) = @_;
    my $f = $self->{nginx}->pid_file;
    return undef unless -r $f;
    my ($pid) = slurp($f) =~ /^(\d+)/;
    return $pid && kill(0, $pid) ? $pid : undef;
}

sub migrate {
    my ($self) = @_;

    $self->{pg}->create_app_db;

    return BulletDrop::Migrate::apply(conninfo => $self->{pg}->conninfo,
                                      dir => "$self->{top}/sql",
                                      log => $self->{log});
}

sub render_conf {
    my ($self) = @_;

    my $template = slurp("$self->{top}/nginx-conf/dev.conf");

    return BulletDrop::Nginx::render($template,
        MODULE   => BulletDrop::Nginx::module_path(),
        PREFIX   => $self->{nginx}->prefix,
        PORT     => $self->{port},
        DB       => $self->{pg}->conninfo,
        RUN_DIR  => $self->{dir},
        WWW      => "$self->{top}/www/dist",
        CONF_DIR => "$self->{top}/nginx-conf");
}

# The key JWTs are signed with: made once, kept across runs (tokens from
# an earlier run stay valid), readable by its owner only.
sub ensure_jwt_secret {
    my ($self) = @_;

    my $file = $self->jwt_secret_file;
    return if -e $file;

    spew_private($file, random_text(64));
    $self->{log}->("wrote a new JWT secret to $file");

    return;
}

# Everything `make run` does before it waits: the database up and
# migrated, nginx started as our child.
sub up {
    my ($self) = @_;

    if (my $pid = $self->running_nginx) {
        croak "a stack already runs in $self->{dir} (nginx $pid); "
            . "run 'make stop' first";
    }

    my $new = !$self->{pg}->initialized;
    $self->{log}->($new ? "creating a PostgreSQL cluster in "
                          . $self->{pg}->dir
                        : "reusing the PostgreSQL cluster in "
                          . $self->{pg}->dir);

    $self->{pg}->init;
    $self->{pg}->start;

    eval {
        $self->migrate;
        $self->ensure_jwt_secret;
        make_path($self->upload_dir);
        $self->{nginx}->write_conf($self->render_conf);
        $self->{nginx}->start;
        1;
    } or do {
        my $err = $@;
        $self->{pg}->stop;
        die $err;
    };

    return;
}

sub down {
    my ($self) = @_;

    $self->{nginx}->stop;
    eval { $self->{pg}->stop; 1 } or warn $@;

    return;
}

# The admin account of this run dir, for the banner:
#   {username, password, api_key}, or {missing => 1} when the user exists
#   but admin.json does not, or {error => text}.
# On the first start (no admin.json) it registers "admin" with a random
# password through the API, promotes it in the database, logs in and makes
# an API key named "make run", saving admin.json as soon as the password
# exists; a start that finds admin.json without a key finishes the job.
# Never fatal: a stack without an admin still serves.
sub admin {
    my ($self) = @_;
    my $admin = eval { $self->_admin };
    return $admin if $admin;
    return { %{ $self->{admin_so_far} // {} },
             error => ($@ =~ s/\s+\z//r) };
}

sub _admin {
    my ($self) = @_;

    my $file = $self->admin_file;
    my $json = JSON::PP->new->utf8->canonical->pretty;
    my $http = BulletDrop::HTTP->new(port => $self->{port});
    my $admin;

    if (-e $file) {
        $admin = eval { $json->decode(slurp($file)) };
        die "$file is not the JSON it should be; remove it and the "
            . "'admin' user to start over\n"
            unless ref $admin eq 'HASH' && defined $admin->{username}
                   && defined $admin->{password};

    } else {
        my $name = 'admin';
        my $have = $self->{pg}->psql(
            "SELECT 1 FROM users WHERE lower(username) = '$name'");
        return { missing => 1, username => $name } if @$have;

        my $password = random_text(24);
        my $res = $http->request('POST', '/api/auth/register',
                                 json => { username => $name,
                                           password => $password },
                                 timeout => 30);
        die "registering '$name' failed: $res->{status} $res->{body}"
            unless $res->{status} == 201;

        $admin = { username => $name, password => $password,
                   api_key => undef };
        spew_private($file, $json->encode($admin));
    }

    return $admin if defined $admin->{api_key};
    $self->{admin_so_far} = { %$admin };

    (my $quoted = $admin->{username}) =~ s/'/''/g;
    $self->{pg}->psql(
        "UPDATE users SET role = 'admin' WHERE username = '$quoted'");

    my $login = $http->request('POST', '/api/auth/login',
                               json => { username => $admin->{username},
                                         password => $admin->{password} },
                               timeout => 30);
    die "logging in as '$admin->{username}' failed: $login->{status} "
        . "$login->{body}"
        unless $login->{status} == 200 && $login->{json}{access_token};

    my $key = $http->request('POST', '/api/users/me/api-keys',
                             json => { name => 'make run' },
                             token => $login->{json}{access_token},
                             timeout => 30);
    die "making an API key failed: $key->{status} $key->{body}"
        unless $key->{status} == 201 && $key->{json}{key};

    $admin->{api_key} = $key->{json}{key};
    spew_private($file, $json->encode($admin));
    $self->{log}->("made the admin account; saved in $file");

    return $admin;
}

# The file domains of the base domain (localhost), registered through the
# API with the admin's key: POST /api/domains/seed adds those not there
# yet.  Their URLs, or an error text.
sub seed_domains {
    my ($self, $admin) = @_;

    # a restored run dir has its domains, but not admin.json: read them
    if (!defined $admin->{api_key}) {
        my $rows = eval { $self->{pg}->psql(
            'SELECT name FROM domains WHERE enabled ORDER BY name') } // [];
        return @$rows
            ? join(' ', map { "http://$_->[0]:$self->{port}/" } @$rows)
            : 'not seeded: there is no admin API key';
    }

    my $res = eval {
        BulletDrop::HTTP->new(port => $self->{port})
            ->request('POST', '/api/domains/seed',
                      token => $admin->{api_key}, timeout => 30)
    };
    return 'not seeded: ' . ($res ? "$res->{status} $res->{body}" : $@)
        unless $res && $res->{status} == 200;

    return join ' ', map { "http://$_->{name}:$self->{port}/" }
                     grep { $_->{enabled} } @{ $res->{json}{domains} };
}

sub banner {
    my ($self, $admin) = @_;

    $admin //= $self->admin;
    my $domains = $self->seed_domains($admin);
    my $url = $self->url;
    my $health = eval {
        BulletDrop::HTTP->new(port => $self->{port})
            ->get('/api/health', timeout => 10)->{body}
    } // "(no answer: $@)";
    chomp $health;

    return join "\n",
        '',
        'BulletDrop is running.',
        '',
        "  URL         $url/   (the web app: sign in as the admin below)",
        "  Health      curl $url/api/health",
        "              $health",
        "  Run dir     $self->{dir}",
        "  Uploads     " . $self->upload_dir,
        "  Error log   " . $self->{nginx}->error_log,
        "  Database    psql \"" . $self->{pg}->conninfo . '"',
        "  Files on    $domains",
        $self->_banner_admin($admin),
        '',
        'Ctrl-C stops nginx and PostgreSQL.',
        '';
}

sub _banner_admin {
    my ($self, $admin) = @_;

    my $file = $self->admin_file;

    if ($admin->{missing}) {
        return "  Admin       the user '$admin->{username}' exists but $file "
               . 'is missing:',
               '              its password is not known here (remove the '
               . 'run dir to start over)';
    }

    if ($admin->{error} && !defined $admin->{password}) {
        return "  Admin       not set up: $admin->{error}";
    }

    if ($admin->{error}) {
        return "  Admin       $admin->{username}",
               "  Password    $admin->{password}",
               "  API key     not made: $admin->{error}",
               "              (the next start tries again; see $file)";
    }

    my $sharex = $self->sharex_config($admin);

    return "  Admin       $admin->{username}",
           "  Password    $admin->{password}",
           '  API key     ' . ($admin->{api_key} // '(none yet)'),
           "              saved in $file",
           defined $sharex ? "  ShareX      $sharex" : (),
           "  Try         curl -H 'Authorization: Bearer "
           . ($admin->{api_key} // '<key>') . "' " . $self->url
           . '/api/users/me';
}

# The ShareX config of the admin's API key, fetched from the API once
# and kept in the run dir (it holds the key: owner only); its path, or
# undef when there is no key or the API would not give one.
sub sharex_config {
    my ($self, $admin) = @_;

    my $file = $self->sharex_file;
    return $file if -e $file;
    return undef unless defined $admin->{api_key};

    my $res = eval {
        BulletDrop::HTTP->new(port => $self->{port},
                              host => "127.0.0.1:$self->{port}")
            ->get('/api/users/me/sharex', token => $admin->{api_key},
                  timeout => 10);
    };
    return undef unless $res && $res->{status} == 200 && $res->{json};

    spew_private($file, $res->{body});
    return $file;
}

# Rows of the uploads table whose file is missing, and files in the
# category dirs of $o{upload_dir} that no row names, in the database of
# $o{pg} (a BulletDrop::Pg; conninfo => ...: another database through its
# psql): one line each, none when the two agree.  A row due for the
# sweep needs no file: the sweep takes it, and burn after reading has
# unlinked its file already.
sub fsck_report {
    my (%o) = @_;

    my $dir = $o{upload_dir};
    my $pg = $o{pg} or croak 'pg is required';
    # a row due for the sweep (expired, or out of views) may have lost its
    # file already: burn after reading unlinks it at the view
    my $rows = $pg->psql('SELECT u.id, u.category, u.ext, u.user_id, '
                         . 'coalesce(s.username, \'?\'), '
                         . '(u.expires_at <= now() OR (u.max_views IS NOT '
                         . 'NULL AND u.views >= u.max_views)) '
                         . 'FROM uploads u '
                         . 'LEFT JOIN users s ON s.id = u.user_id '
                         . 'ORDER BY u.seq',
                         $o{conninfo} ? (conninfo => $o{conninfo}) : ());

    my (@problems, %named);

    for my $r (@$rows) {
        my ($id, $category, $ext, $user_id, $username, $due) = @$r;
        my $rel = "$category/$id.$ext";
        $named{$rel} = 1;
        push @problems, "no file for upload $id (user $user_id, "
                        . "$username): $dir/$rel"
            unless -f "$dir/$rel" || ($due // '') eq 't';
    }

    for my $category (qw(images documents other)) {
        opendir my $dh, "$dir/$category" or next;
        for my $name (sort grep { !/\A\.\.?\z/ } readdir $dh) {
            push @problems, "no upload for file: $dir/$category/$name"
                unless $named{"$category/$name"};
        }
    }

    return @problems;
}

# The bucket of the run dir's nginx configuration, when it has
# "bulletdrop_storage s3 endpoint=... bucket=... credentials=...": its
# options as a hash; undef for local storage.  (`make run` renders
# nginx-conf/dev.conf, which stores locally.)
sub s3_storage {
    my ($self) = @_;
    my $file = $self->{nginx}->conf_file;
    return undef unless -r $file;
    my $conf = slurp($file);
    $conf =~ s/#[^\n]*//g;
    my ($args) = $conf =~ /^\s*bulletdrop_storage\s+s3\b([^;]*);/m
        or return undef;
    my %o = $args =~ /(\w+)=(\S+)/g;
    return \%o;
}

# `make fsck`: the report for the run dir's database and uploads/, printed
# a line a problem; true when there is none.  A stopped cluster is
# started for the occasion and stopped again.
sub fsck {
    my ($self) = @_;

    my $pg = $self->{pg};
    die "no PostgreSQL cluster in " . $pg->dir . ": nothing to check "
        . "(make run creates it)\n" unless $pg->initialized;

    # nginx stores in a bucket: bulletdrop-s3 fsck compares it instead
    if (my $s3 = $self->s3_storage) {
        return $self->_with_pg(sub {
            system("$self->{top}/bin/bulletdrop-s3",
                   map({ ("--$_" => $s3->{$_}) }
                       grep { defined $s3->{$_} }
                       qw(endpoint bucket credentials region style)),
                   'fsck', '--db', $pg->conninfo) == 0;
        });
    }

    my $was_running = $pg->running;
    $pg->start unless $was_running;

    my @problems = eval {
        fsck_report(pg => $pg, upload_dir => $self->upload_dir) };
    my $err = $@;
    $pg->stop unless $was_running;
    die $err if $err;

    print "$_\n" for @problems;
    $self->{log}->(@problems
        ? scalar(@problems) . ' problem' . (@problems == 1 ? '' : 's')
          . ' in ' . $self->upload_dir
        : 'fsck: every upload has its file and every file its upload in '
          . $self->upload_dir);

    return !@problems;
}

# `make backup`: bin/bulletdrop-backup on the run dir's database and
# uploads/, into BULLETDROP_BACKUP_ROOT (default <run dir>/backups),
# keeping BULLETDROP_BACKUP_KEEP (default 7), pushed to
# BULLETDROP_BACKUP_RCLONE when set (the script reads those itself).
# `make restore BACKUP=dir [FORCE=1]`: bin/bulletdrop-restore into the
# run dir's database (made empty if there is none) and uploads/.  A
# stopped cluster is started for the occasion and stopped again.  True
# when the script succeeded.
sub backup_root {
    my ($self) = @_;
    return File::Spec->rel2abs($ENV{BULLETDROP_BACKUP_ROOT}
                               // "$self->{dir}/backups", $self->{top});
}

sub backup {
    my ($self) = @_;

    my $pg = $self->{pg};
    die "no PostgreSQL cluster in " . $pg->dir . ": nothing to back up "
        . "(make run creates it)\n" unless $pg->initialized;

    return $self->_with_pg(sub {
        system("$self->{top}/bin/bulletdrop-backup", '--db', $pg->conninfo,
               '--upload-dir', $self->upload_dir,
               '--root', $self->backup_root) == 0;
    });
}

sub restore {
    my ($self, $backup, %o) = @_;

    die "make restore needs BACKUP=<a backup's directory>\n"
        unless defined $backup && $backup ne '';

    my $pg = $self->{pg};
    $pg->init;

    my $ok = $self->_with_pg(sub {
        # an empty database for the dump: no migrations, they are in it
        $pg->create_app_db;
        system("$self->{top}/bin/bulletdrop-restore", '--db', $pg->conninfo,
               '--upload-dir', $self->upload_dir,
               $o{force} ? '--force' : (),
               File::Spec->rel2abs($backup, $self->{top})) == 0;
    });

    print STDERR "make restore: its --force is FORCE=1\n"
        unless $ok || $o{force};

    return $ok;
}

sub _with_pg {
    my ($self, $code) = @_;

    my $pg = $self->{pg};
    my $was_running = $pg->running;
    $pg->start unless $was_running;

    my $ok = eval { $code->() };
    my $err = $@;
    $pg->stop unless $was_running;
    die $err if $err;

    return $ok;
}

# `make run`: up, then in the foreground until Ctrl-C, or until nginx
# exits (`make stop` from another shell ends it cleanly)
sub run {
    my ($self) = @_;

    my $stop = 0;
    local $SIG{INT} = sub { $stop = 1 };
    local $SIG{TERM} = sub { $stop = 1 };
    local $| = 1;

    $self->up;
    print $self->banner;

    my $nginx = $self->{nginx};

    until ($stop) {
        if (waitpid($nginx->pid, WNOHANG) == $nginx->pid) {
            my $status = $?;
            delete $nginx->{pid};
            $self->{pg}->stop if $self->{pg}->running;

            die "nginx exited with status $status:\n"
                . $nginx->log_tail(20) . "\n" if $status != 0;

            print "nginx stopped; PostgreSQL stopped\n";
            return;
        }

        sleep 0.2;
    }

    print "stopping nginx and PostgreSQL\n";
    $self->down;

    return;
}

# `make stop`: a stack started elsewhere (in the background)
sub stop {
    my ($self) = @_;

    if (my $pid = $self->running_nginx) {
        kill 'QUIT', $pid;

        my $deadline = time + 15;
        sleep 0.1 while kill(0, $pid) && time < $deadline;
        kill 'TERM', $pid if kill 0, $pid;

        $self->{log}->("nginx stopped");
    }

    if ($self->{pg}->initialized && $self->{pg}->running) {
        $self->{pg}->stop;
        $self->{log}->("PostgreSQL stopped");
    }

    return;
}

sub main {
    my ($command) = @_;

    $command //= '';

    # migrate against any database: BULLETDROP_DB is a libpq conninfo/URI,
    # and this is bin/bulletdrop-migrate with the checkout's sql/
    if ($command eq 'migrate' && $ENV{BULLETDROP_DB}) {
        exit BulletDrop::Migrate::main('--dir', top_dir() . '/sql');
    }

    my $stack = __PACKAGE__->new;

    if ($command eq 'run') {
        $stack->run;

    } elsif ($command eq 'stop') {
        $stack->stop;

    } elsif ($command eq 'fsck') {
        # the log line goes to stderr: stdout is the list of problems
        $stack->{log} = sub { print STDERR "$_[0]\n" };
        exit($stack->fsck ? 0 : 1);

    } elsif ($command eq 'backup') {
        exit($stack->backup ? 0 : 1);

    } elsif ($command eq 'restore') {
        exit($stack->restore($ENV{BACKUP},
                             force => scalar(($ENV{FORCE} // '')
                                             =~ /\A(?:1|yes)\z/))
             ? 0 : 1);

    } elsif ($command eq 'migrate') {
        my $pg = $stack->pg;
        my $was_running = $pg->running;
        $pg->init;
        $pg->start;
        eval { $stack->migrate; 1 } or do {
            my $err = $@;
            $pg->stop unless $was_running;
            die $err;
        };
        $pg->stop unless $was_running;

    } else {
        die "usage: BulletDrop::Stack::main(run|stop|migrate|fsck|backup|"
            . "restore)\n";
    }

    return;
}

1;
