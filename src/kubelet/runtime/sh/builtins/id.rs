//! `id`, `groups` and `whoami`: who the script runs as ([`Shell::credentials`]), named from the
//! image's `/etc/passwd` and `/etc/group` (the busybox image's, from buildroot, unless the
//! container's filesystem holds others), with busybox 1.36's formats and messages.
//!
//! The process's groups are what containerd gives it: the primary group, the groups of the
//! image's `/etc/group` that list the user by name, and the container's supplementary groups
//! (a pod's `supplementalGroups` and `fsGroup`), without duplicates; the kernel keeps them
//! sorted, so `getgroups(2)` (and `id`) lists them in ascending order.
//!
//! [`Shell::credentials`]: super::super::Shell::credentials

use super::super::interp::{Fds, Interp};

/// The busybox image's `/etc/passwd` (buildroot's skeleton): name, uid, gid.
const PASSWD: &[(&str, u32, u32)] = &[
    ("root", 0, 0),
    ("daemon", 1, 1),
    ("bin", 2, 2),
    ("sys", 3, 3),
    ("sync", 4, 100),
    ("mail", 8, 8),
    ("www-data", 33, 33),
    ("operator", 37, 37),
    ("nobody", 65534, 65534),
];

/// The busybox image's `/etc/group`: name, gid, members.
const GROUP: &[(&str, u32, &[&str])] = &[
    ("root", 0, &[]),
    ("daemon", 1, &[]),
    ("bin", 2, &[]),
    ("sys", 3, &[]),
    ("adm", 4, &[]),
    ("tty", 5, &[]),
    ("disk", 6, &[]),
    ("lp", 7, &[]),
    ("mail", 8, &[]),
    ("kmem", 9, &[]),
    ("wheel", 10, &["root"]),
    ("cdrom", 11, &[]),
    ("dialout", 18, &[]),
    ("floppy", 19, &[]),
    ("video", 28, &[]),
    ("audio", 29, &[]),
    ("tape", 32, &[]),
    ("www-data", 33, &[]),
    ("operator", 37, &[]),
    ("utmp", 43, &[]),
    ("plugdev", 46, &[]),
    ("staff", 50, &[]),
    ("lock", 54, &[]),
    ("netdev", 82, &[]),
    ("users", 100, &[]),
    ("nobody", 65533, &[]),
    ("nogroup", 65534, &[]),
];

struct User {
    name: String,
    uid: u32,
    gid: u32,
}

struct Group {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// The user and group databases the container's C library reads.
struct Db {
    users: Vec<User>,
    groups: Vec<Group>,
}

impl Db {
    fn user_by_uid(&self, uid: u32) -> Option<&User> {
        self.users.iter().find(|u| u.uid == uid)
    }

    fn user_by_name(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    fn group_name(&self, gid: u32) -> Option<&str> {
        self.groups
            .iter()
            .find(|g| g.gid == gid)
            .map(|g| g.name.as_str())
    }

    /// The groups of `/etc/group` that list `user` (containerd's additional groups: not a
    /// group of the user's own name).
    fn member_of(&self, user: &str) -> Vec<u32> {
        self.groups
            .iter()
            .filter(|g| g.name != user && g.members.iter().any(|m| m == user))
            .map(|g| g.gid)
            .collect()
    }

    /// glibc's `getgrouplist(user, gid)`: `gid`, then the groups that list the user.
    fn grouplist(&self, user: &str, gid: u32) -> Vec<u32> {
        let mut out = vec![gid];
        for g in &self.groups {
            if g.members.iter().any(|m| m == user) && !out.contains(&g.gid) {
                out.push(g.gid);
            }
        }
        out
    }
}

/// Fields of a colon-separated database line.
fn fields(line: &str) -> Vec<&str> {
    line.split(':').collect()
}

impl Interp<'_> {
    fn user_db(&self) -> Db {
        let users = match self.read("/etc/passwd") {
            Some(data) => String::from_utf8_lossy(&data)
                .lines()
                .filter_map(|l| {
                    let f = fields(l);
                    Some(User {
                        name: f.first()?.to_string(),
                        uid: f.get(2)?.parse().ok()?,
                        gid: f.get(3)?.parse().ok()?,
                    })
                })
                .collect(),
            None => PASSWD
                .iter()
                .map(|&(name, uid, gid)| User {
                    name: name.into(),
                    uid,
                    gid,
                })
                .collect(),
        };
        let groups = match self.read("/etc/group") {
            Some(data) => String::from_utf8_lossy(&data)
                .lines()
                .filter_map(|l| {
                    let f = fields(l);
                    Some(Group {
                        name: f.first()?.to_string(),
                        gid: f.get(2)?.parse().ok()?,
                        members: f
                            .get(3)
                            .map(|m| {
                                m.split(',')
                                    .filter(|s| !s.is_empty())
                                    .map(str::to_string)
                                    .collect()
                            })
                            .unwrap_or_default(),
                    })
                })
                .collect(),
            None => GROUP
                .iter()
                .map(|&(name, gid, members)| Group {
                    name: name.into(),
                    gid,
                    members: members.iter().map(|m| m.to_string()).collect(),
                })
                .collect(),
        };
        Db { users, groups }
    }

    /// The process's (uid, gid, groups as `getgroups(2)` lists them).
    fn process_ids(&self, db: &Db) -> (u32, u32, Vec<u32>) {
        let creds = self.shell.credentials();
        let mut groups = vec![creds.gid];
        if let Some(user) = db.user_by_uid(creds.uid) {
            groups.extend(db.member_of(&user.name));
        }
        groups.extend(creds.groups.iter().copied());
        groups.sort_unstable();
        groups.dedup();
        (creds.uid, creds.gid, groups)
    }

    /// `id [-u|-g|-G] [-n] [-r] [USER]`, and `groups [USER]` (`id -Gn`).
    pub(super) fn cmd_id(&mut self, cmd: &str, args: &[String], fds: &Fds) -> i32 {
        let groups_applet = cmd == "groups";
        let mut which = if groups_applet { Some('G') } else { None };
        let mut names = groups_applet;
        let mut operands: Vec<&String> = Vec::new();
        let mut opts_done = false;
        for a in args {
            let opts = a
                .strip_prefix('-')
                .filter(|o| !o.is_empty() && !opts_done && !groups_applet);
            let Some(opts) = opts else {
                operands.push(a);
                continue;
            };
            if opts == "-" {
                opts_done = true;
                continue;
            }
            for c in opts.chars() {
                match c {
                    'u' | 'g' | 'G' => which = Some(c),
                    'n' => names = true,
                    'r' => {}
                    _ => {
                        self.err(fds, &format!("id: invalid option -- '{c}'\n"));
                        return 1;
                    }
                }
            }
        }
        if names && which.is_none() {
            self.err(fds, "id: option -n requires -u, -g or -G\n");
            return 1;
        }
        if operands.len() > 1 {
            self.err(fds, &format!("Usage: {cmd} [USER]\n"));
            return 1;
        }
        let db = self.user_db();
        let (uid, gid, groups) = match operands.first() {
            Some(name) => match db.user_by_name(name) {
                Some(u) => (u.uid, u.gid, db.grouplist(&u.name, u.gid)),
                None => {
                    self.err(fds, &format!("{cmd}: unknown user {name}\n"));
                    return 1;
                }
            },
            None => self.process_ids(&db),
        };
        let user_name = |id: u32| db.user_by_uid(id).map(|u| u.name.clone());
        let group_name = |id: u32| db.group_name(id).map(str::to_string);
        let mut line = String::new();
        let mut unknown: Vec<u32> = Vec::new();
        // One ID: its number, or with -n its name (the number, and an error, without one).
        let mut one = |line: &mut String, id: u32, name: Option<String>| match name {
            Some(n) if names => line.push_str(&n),
            _ => {
                line.push_str(&id.to_string());
                if names {
                    unknown.push(id);
                }
            }
        };
        match which {
            None => {
                let with_name = |id: u32, name: Option<String>| match name {
                    Some(n) => format!("{id}({n})"),
                    None => id.to_string(),
                };
                line = format!(
                    "uid={} gid={}",
                    with_name(uid, user_name(uid)),
                    with_name(gid, group_name(gid))
                );
                let listed: Vec<String> = groups
                    .iter()
                    .map(|&g| with_name(g, group_name(g)))
                    .collect();
                if !listed.is_empty() {
                    line.push_str(&format!(" groups={}", listed.join(",")));
                }
            }
            Some('u') => one(&mut line, uid, user_name(uid)),
            Some('g') => one(&mut line, gid, group_name(gid)),
            Some(_) => {
                one(&mut line, gid, group_name(gid));
                for &g in groups.iter().filter(|&&g| g != gid) {
                    line.push(' ');
                    one(&mut line, g, group_name(g));
                }
            }
        }
        for id in &unknown {
            self.err(fds, &format!("{cmd}: unknown ID {id}\n"));
        }
        line.push('\n');
        self.out(fds, line.as_bytes());
        i32::from(!unknown.is_empty())
    }

    /// `whoami`: the name of the effective user.
    pub(super) fn cmd_whoami(&mut self, args: &[String], fds: &Fds) -> i32 {
        if !args.is_empty() {
            self.err(fds, "Usage: whoami\n");
            return 1;
        }
        let db = self.user_db();
        let uid = self.shell.credentials().uid;
        match db.user_by_uid(uid) {
            Some(u) => {
                let line = format!("{}\n", u.name);
                self.out(fds, line.as_bytes());
                0
            }
            None => {
                self.err(fds, &format!("whoami: unknown uid {uid}\n"));
                1
            }
        }
    }
}
