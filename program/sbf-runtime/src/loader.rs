//! The BPF Upgradeable Loader's ProgramData account: who may initialize a program's
//! singleton accounts (the upgrade authority, so nobody can front-run a deployment).
use crate::account::AccountView;
use crate::programs::BPF_LOADER_UPGRADEABLE_ID;
use crate::pubkey::{keys_eq, Pubkey};

/// `UpgradeableLoaderState::ProgramData`'s tag (u32 little-endian).
const PROGRAM_DATA_TAG: u8 = 3;
/// Tag (4) + deployment slot (8) + `Option<Pubkey>` (1 + 32).
const HEADER_LEN: usize = 45;

/// True when `program_data` is the ProgramData account at `expected` (the program's,
/// fixed at build time), owned by the loader, and its upgrade authority is `signer`.
#[inline]
pub fn is_upgrade_authority(program_data: &AccountView, expected: &Pubkey, signer: &Pubkey) -> bool {
    if !keys_eq(program_data.key(), expected) || !program_data.is_owned_by(&BPF_LOADER_UPGRADEABLE_ID) {
        return false;
    }
    let Ok(data) = program_data.try_borrow_data() else {
        return false;
    };
    if data.len() < HEADER_LEN || data[0] != PROGRAM_DATA_TAG || data[12] != 1 {
        return false;
    }
    match <&Pubkey>::try_from(&data[13..HEADER_LEN]) {
        Ok(authority) => keys_eq(authority, signer),
        Err(_) => false,
    }
}
