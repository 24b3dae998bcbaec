#!/usr/bin/env perl
# run.pl: run a command, or an array of jobs, on this machine (Kaldi's run.pl interface).
#
#   run.pl [options] [JOB=1:N] LOGFILE COMMAND [ARGS...]
#
# With JOB=a:b the command runs once per index; the string JOB is replaced by the index in LOGFILE
# and in every argument (any variable name works: SEED=1:3). The command runs through bash with
# stdout and stderr appended to its log. Arguments are quoted for bash unless they are a shell
# operator given escaped (\| \> 2\> \; \&\&), so "a | b" as ONE argument, or a \| b, is a pipe,
# while an argument like "ark:gunzip -c x.gz |" reaches the program unchanged.
# Exit status is 0 only if every job succeeded.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Path qw(make_path);

sub fail;                          # defined below: print the message and exit 1
my $usage = <<'EOF';
Usage: run.pl [options] [JOB=1:N] LOGFILE COMMAND [ARGS...]
  e.g. run.pl JOB=1:4 exp/log/decode.JOB.log python -m foo --part JOB
Options:
  --max-jobs-run M   run at most M jobs at a time (default: number of CPUs)
  --gpu N, --mem X, --num-threads N, --time T, --config F, --name S
                     accepted for compatibility with slurm.pl; ignored here (noted in the log)
EOF

my $max_jobs = num_cpus();
my @ignored;                       # options that only a cluster runner would use
my ($var, $first, $last) = (undef, 1, 1);

while (@ARGV) {                    # options and the JOB=a:b range, in any order
  my $arg = $ARGV[0];
  if ($arg =~ /^([A-Za-z_]\w*)=(\d+)(?::(\d+))?$/) {
    fail "run.pl: only one job range allowed\n" if defined $var;
    ($var, $first, $last) = ($1, $2, $3 // $2);
    fail "run.pl: empty job range $arg\n" if $last < $first;
    shift @ARGV;
    next;
  }
  last unless $arg =~ /^--./;
  shift @ARGV;
  my ($opt, $val) = $arg =~ /^--([^=]+)=(.*)$/s ? ($1, $2) : (substr($arg, 2), shift @ARGV);
  $opt =~ tr/_/-/;
  fail "run.pl: option --$opt needs a value\n" unless defined $val;
  if ($opt eq 'max-jobs-run') {
    fail "run.pl: --max-jobs-run expects a positive integer, got '$val'\n" unless $val =~ /^[1-9]\d*$/;
    $max_jobs = $val;
  } elsif ($opt =~ /^(gpu|mem|num-threads|time|config|name)$/) {
    push @ignored, "--$opt $val";
  } else {
    fail "run.pl: unknown option --$opt\n$usage";
  }
}
fail $usage if @ARGV < 2;
my ($log_spec, @cmd) = @ARGV;
my $num_jobs = $last - $first + 1;
if ($num_jobs > 1 && index($log_spec, $var) < 0) {
  fail "run.pl: $num_jobs jobs would share one log file; put $var in the name: $log_spec\n";
}

my (%running, @failed);            # pid => job index; indices of failed jobs
for my $i ($first .. $last) {
  wait_one() while keys(%running) >= $max_jobs;
  my $pid = fork() // die "run.pl: fork failed: $!\n";
  if ($pid == 0) {
    exit run_job($i);
  }
  $running{$pid} = $i;
}
wait_one() while %running;

if (@failed) {
  my ($first_failed) = sort { $a <=> $b } @failed;
  printf STDERR "run.pl: %d / %d failed, log is in %s\n", scalar(@failed), $num_jobs,
    subst($log_spec, $first_failed);
  exit 1;
}
exit 0;

sub fail {                         # usage errors: message and exit status 1
  print STDERR @_;
  exit 1;
}

sub wait_one {
  my $pid = waitpid(-1, 0);
  return if $pid <= 0;
  my $i = delete $running{$pid};
  push @failed, $i if defined $i && $? != 0;
}

sub subst {                        # replace the job variable by the index
  my ($s, $i) = @_;
  $s =~ s/\Q$var\E/$i/g if defined $var;
  return $s;
}

sub quote_arg {
  my ($a) = @_;
  return $a if $a =~ /^(\||\|\||\|&|&&|;|<|>|>>|[12]>|[12]>>|&>|2>&1)$/;  # escaped shell operator
  return $a if $a =~ m{^[\w\@%+=:,./-]+$};                                  # nothing to protect
  $a =~ s/'/'\\''/g;
  return "'$a'";
}

sub shell_command {                # one argument is a shell command line as it stands
  my @args = @_;
  return @args == 1 ? $args[0] : join(' ', map { quote_arg($_) } @args);
}

sub run_job {                      # in the forked child: returns the job's exit code
  my ($i) = @_;
  my $log = subst($log_spec, $i);
  my $command = shell_command(map { subst($_, $i) } @cmd);
  my $dir = dirname($log);
  make_path($dir) unless -d $dir;
  open(STDOUT, '>', $log) or die "run.pl: cannot write $log: $!\n";
  open(STDERR, '>&', \*STDOUT) or die "run.pl: cannot redirect stderr: $!\n";
  STDOUT->autoflush(1);
  my $start = time();
  (my $shown = $command) =~ s/\n/\n# /g;
  print "# $shown\n# Started at " . localtime() . "\n";
  print "# run.pl: ignoring $_ (local run)\n" for @ignored;
  system('bash', '-c', $command);
  my $rc = $? == -1 ? 127 : ($? & 127) ? 128 + ($? & 127) : $? >> 8;
  my $elapsed = time() - $start;
  print "# Accounting: time=$elapsed threads=1\n";
  print "# Ended (code $rc) at " . localtime() . ", elapsed time $elapsed seconds\n";
  return $rc;
}

sub num_cpus {
  my $n = `nproc 2>/dev/null`;
  return $1 if defined $n && $n =~ /^(\d+)/ && $1 > 0;
  if (open(my $fh, '<', '/proc/cpuinfo')) {
    $n = grep { /^processor\s*:/ } <$fh>;
    return $n if $n > 0;
  }
  return 1;
}
