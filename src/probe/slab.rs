//! A slab of connections with generations, so that a deadline or event that outlived its
//! connection is recognised as stale instead of hitting the slot's next occupant.

/// A key into a [`Slab`]: the slot and the generation it had when the value was inserted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    /// Slot index (stable while the value lives; becomes the mio token offset).
    pub slot: usize,
    /// Generation of the slot at insertion.
    pub generation: u64,
}

#[derive(Debug)]
struct Slot<T> {
    generation: u64,
    value: Option<T>,
}

/// Values in reusable slots. Invariant: `free` lists exactly the slots whose value is `None`.
#[derive(Debug)]
pub struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<usize>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> Slab<T> {
    /// Stores `value` and returns its key.
    pub fn insert(&mut self, value: T) -> Key {
        if let Some(slot) = self.free.pop() {
            let entry = &mut self.slots[slot];
            entry.generation += 1;
            entry.value = Some(value);
            return Key {
                slot,
                generation: entry.generation,
            };
        }
        self.slots.push(Slot {
            generation: 0,
            value: Some(value),
        });
        Key {
            slot: self.slots.len() - 1,
            generation: 0,
        }
    }

    /// The value in `slot`, whatever its generation (events carry only the slot).
    pub fn get_mut(&mut self, slot: usize) -> Option<&mut T> {
        self.slots.get_mut(slot).and_then(|s| s.value.as_mut())
    }

    /// The value in `slot`.
    pub fn get(&self, slot: usize) -> Option<&T> {
        self.slots.get(slot).and_then(|s| s.value.as_ref())
    }

    /// Whether `key` still names a live value.
    pub fn is_live(&self, key: Key) -> bool {
        self.slots
            .get(key.slot)
            .is_some_and(|s| s.generation == key.generation && s.value.is_some())
    }

    /// The key of the value in `slot`.
    pub fn key(&self, slot: usize) -> Option<Key> {
        let s = self.slots.get(slot)?;
        s.value.as_ref().map(|_| Key {
            slot,
            generation: s.generation,
        })
    }

    /// Removes and returns the value in `slot`.
    pub fn remove(&mut self, slot: usize) -> Option<T> {
        let value = self.slots.get_mut(slot)?.value.take()?;
        self.free.push(slot);
        Some(value)
    }

    /// Slots of all live values.
    pub fn slots(&self) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|&i| self.slots[i].value.is_some())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reused_slot_gets_a_new_generation() {
        let mut slab = Slab::default();
        let a = slab.insert("a");
        assert!(slab.is_live(a));
        assert_eq!(slab.remove(a.slot), Some("a"));
        assert!(!slab.is_live(a));
        let b = slab.insert("b");
        assert_eq!(b.slot, a.slot);
        assert_ne!(b.generation, a.generation);
        assert!(!slab.is_live(a));
        assert_eq!(slab.remove(a.slot), Some("b"));
        assert_eq!(slab.remove(a.slot), None);
        assert!(slab.slots().is_empty());
    }
}
